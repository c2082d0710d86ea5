import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { monotonicFactory } from "ulid";
import { type LoadKey, openStore, retainNativeHandles } from "../packages/shared/src/index.js";
import {
  findWrk,
  makeTempDir,
  percentile,
  removeTempDir,
  runLoad,
  runWrkAsync,
  type SummaryRow,
  startGateway,
  startSim,
  table,
} from "./lib.js";

/** POST /jobs throughput with no worker running: the jobs only pile up in the queue. */
export async function benchPostJobs(durationMs: number) {
  const sim = await startSim(["--load-ms", "0"]);
  const gateway = await startGateway(sim.url);
  const body = JSON.stringify({
    model: "llama3.2",
    messages: [{ role: "user", content: "hello" }],
    metadata: { batch: 1 },
  });
  const rows = [];
  const rates: number[] = [];
  const wrk = findWrk();
  try {
    for (const concurrency of [1, 8, 32]) {
      const r = wrk
        ? await runWrkAsync({ wrk, url: `${gateway.url}/jobs`, body, concurrency, durationMs })
        : await runLoad({ url: `${gateway.url}/jobs`, body, concurrency, durationMs, expectStatus: 202 });
      rates.push(r.rps);
      rows.push([concurrency, r.requests, r.rps, r.p50, r.p99, r.errors]);
    }
  } finally {
    await Promise.all([gateway.stop(), sim.stop()]);
  }
  const summaryRows: SummaryRow[] = [
    {
      measure: `POST /jobs, empty queue, best jobs/s (${wrk ? "wrk" : "Node load generator"})`,
      foreman: Math.max(...rates),
      reference: "—",
      goal: "≥ 5,000",
    },
  ];
  return {
    sections: [
      {
        title: `POST /jobs with the worker stopped (body: a one-message chat job with metadata; load from ${wrk ? "wrk" : "the Node load generator"})`,
        table: table(["concurrency", "jobs", "jobs/s", "p50 ms", "p99 ms", "errors"], rows),
        summary: [`best: ${Math.max(...rates).toFixed(0)} jobs/s (goal ≥ 5,000 on this 2-core machine)`],
      },
    ],
    rows: summaryRows,
  };
}

/**
 * Fills a database with `count` finished jobs the way foreman leaves them (job row and its four history
 * rows), in big transactions straight through SQLite.
 */
export function fillFinishedJobs(dbPath: string, count: number): string[] {
  const store = openStore({ dbPath });
  store.close();
  const db = retainNativeHandles(new Database(dbPath));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const newId = monotonicFactory();
  const insertJob = db.prepare(
    `INSERT INTO jobs (id, kind, api, mode, model, state, request, attempts, max_attempts, result, metrics,
       created_at, queued_at, loading_at, working_at, ended_at, updated_at)
     VALUES (?, 'chat', 'ollama', 'async', ?, ?, ?, 1, 3, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertHistory = db.prepare(
    "INSERT INTO job_transitions (job_id, from_state, to_state, attempt, at) VALUES (?, ?, ?, ?, ?)",
  );
  const models = ["llama3.2:latest", "qwen3:8b", "gemma3:4b"];
  const request = JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hello" }], stream: true });
  const result = JSON.stringify({
    model: "llama3.2",
    message: { role: "assistant", content: "A short answer." },
    done: true,
  });
  const metrics = JSON.stringify({ eval_count: 24, eval_duration: 240_000_000, load_duration: 1_000_000 });
  const sample: string[] = [];
  const base = Date.now() - 86_400_000;
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const t = base + i;
      const id = newId(t);
      const state = i % 50 === 0 ? "failed" : "done";
      insertJob.run(id, models[i % 3], state, request, result, metrics, t, t, t + 1, t + 2, t + 3, t + 3);
      insertHistory.run(id, null, "queued", 0, t);
      insertHistory.run(id, "queued", "loading", 1, t + 1);
      insertHistory.run(id, "loading", "working", 1, t + 2);
      insertHistory.run(id, "working", state, 1, t + 3);
      if (i % Math.max(1, Math.floor(count / 1000)) === 0) sample.push(id);
    }
  });
  for (let i = 0; i < count; i += 50_000) batch(i, Math.min(count, i + 50_000));
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  return sample;
}

async function measureDatabase(label: string, dbPath: string, sample: string[], requests: number) {
  const sim = await startSim(["--load-ms", "0"]);
  const gateway = await startGateway(sim.url, { FOREMAN_DB_PATH: dbPath });
  try {
    // GET /jobs/<id> for ids spread over the whole table, sequentially.
    const latencies: number[] = [];
    for (let i = 0; i < requests; i++) {
      const id = sample[i % sample.length]!;
      const t0 = performance.now();
      const res = await fetch(`${gateway.url}/jobs/${id}`);
      await res.arrayBuffer();
      latencies.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`GET /jobs/${id}: ${res.status}`);
    }
    latencies.sort((a, b) => a - b);
    // The claim query: 1,000 queued jobs over three models, claimed one by one as the worker would.
    const store = openStore({ dbPath });
    store.workerLease.tryAcquire({ workerId: "bench", pid: process.pid, hostname: os.hostname() });
    const models = ["llama3.2:latest", "qwen3:8b", "gemma3:4b"];
    for (let i = 0; i < 1000; i++) {
      store.transitions.createJob({ kind: "chat", api: "ollama", mode: "async", model: models[i % 3]!, request: {} });
    }
    const claims: number[] = [];
    let resident: LoadKey | null = null;
    for (let i = 0; i < 1000; i++) {
      const t0 = performance.now();
      const job = store.claims.claimNext({ workerId: "bench", resident, starvationMs: 120_000, now: Date.now() });
      claims.push(performance.now() - t0);
      resident = job ? { model: job.model, runnerOptions: "" } : resident;
    }
    store.db.exec("DELETE FROM jobs WHERE state = 'loading'");
    store.workerLease.release("bench");
    store.close();
    claims.sort((a, b) => a - b);
    return {
      label,
      get: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
      claim: { p50: percentile(claims, 50), p99: percentile(claims, 99) },
    };
  } finally {
    await Promise.all([gateway.stop(), sim.stop()]);
  }
}

/** GET /jobs/<id> and the claim query on an empty database and on one with `count` finished jobs. */
export async function benchLargeDatabase(count: number, requests: number) {
  const dir = makeTempDir("foreman-bench-db-");
  const emptyPath = path.join(dir, "empty.db");
  const fullPath = path.join(dir, "full.db");
  const emptySample = fillFinishedJobs(emptyPath, 10);
  const t0 = performance.now();
  const fullSample = fillFinishedJobs(fullPath, count);
  const fillSeconds = (performance.now() - t0) / 1000;
  const results = [
    await measureDatabase("10 finished jobs", emptyPath, emptySample, requests),
    await measureDatabase(`${count.toLocaleString("en")} finished jobs`, fullPath, fullSample, requests),
  ];
  const size = fs.statSync(fullPath).size;
  removeTempDir(dir);
  const [empty, full] = results as [(typeof results)[0], (typeof results)[0]];
  return {
    title: `GET /jobs/<id> and the claim query, empty vs ${count.toLocaleString("en")} finished jobs (${(size / 1e9).toFixed(2)} GB file, filled in ${fillSeconds.toFixed(0)} s)`,
    table: table(
      ["database", "GET p50 ms", "GET p99 ms", "claim p50 ms", "claim p99 ms"],
      results.map((r) => [r.label, r.get.p50, r.get.p99, r.claim.p50, r.claim.p99]),
    ),
    summary: [
      `GET /jobs/<id> p50 ratio full/empty: ${(full.get.p50 / empty.get.p50).toFixed(2)}x; claim p50 ratio: ${(full.claim.p50 / empty.claim.p50).toFixed(2)}x (goal: within 2x)`,
    ],
  };
}
