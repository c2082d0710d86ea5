import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { monotonicFactory } from "ulid";
import { drainOrder, openStore, type QueuedJobRef, retainNativeHandles } from "../packages/shared/src/index.js";
import { percentile, startGateway, startSim, table } from "./lib.js";

const STARVATION_MS = 120_000;
const MODELS = ["llama3.2:latest", "qwen3:8b", "gemma3:4b"];

/**
 * Fills a database with `count` queued jobs straight through SQLite, created evenly over the last four
 * minutes so that, with the default 120 s starvation bound, the older half is the starved prefix (ranked
 * first come, first served) and the newer half is drained model by model: both ways of counting a position.
 * Returns ids spread over the whole queue.
 */
export function fillQueuedJobs(dbPath: string, count: number): string[] {
  openStore({ dbPath }).close();
  const db = retainNativeHandles(new Database(dbPath));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const newId = monotonicFactory();
  const insertJob = db.prepare(
    `INSERT INTO jobs (id, kind, api, mode, model, state, request, created_at, queued_at, updated_at)
     VALUES (?, 'chat', 'ollama', 'async', ?, 'queued', ?, ?, ?, ?)`,
  );
  const request = JSON.stringify({
    model: "llama3.2",
    messages: [{ role: "user", content: "Summarise the attached note in three sentences." }],
    stream: true,
  });
  const sample: string[] = [];
  const span = 2 * STARVATION_MS;
  const base = Date.now() - span;
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const t = base + Math.floor((i * span) / count);
      const id = newId(t);
      insertJob.run(id, MODELS[i % 3], request, t, t, t);
      if (i % Math.max(1, Math.floor(count / 200)) === 0) sample.push(id);
    }
  })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  return sample;
}

/** What a position cost before it was counted in SQL: read every queued row and order them in JavaScript. */
function wholeQueueRead(dbPath: string, rounds: number): number {
  const store = openStore({ dbPath });
  const read = store.db.prepare(
    "SELECT id, model, runner_options AS runnerOptions, created_at AS createdAt FROM jobs WHERE state = 'queued' ORDER BY id",
  );
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    drainOrder(read.all() as QueuedJobRef[], null, Date.now(), STARVATION_MS);
    times.push(performance.now() - t0);
  }
  store.close();
  return percentile(
    times.sort((a, b) => a - b),
    50,
  );
}

/** One GET, timed; fails unless every job in the answer carries its position. */
async function timedGet(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  const body = (await res.json()) as { position?: number; jobs?: Array<{ position?: number }> };
  const ms = performance.now() - t0;
  const positioned = body.jobs ? body.jobs.every((j) => j.position !== undefined) : body.position !== undefined;
  if (res.status !== 200 || !positioned) throw new Error(`GET ${url}: ${res.status}, no position`);
  return ms;
}

const summarize = (latencies: number[]) => {
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
};

/**
 * GET /jobs/<id> of a queued job, and a page of the queued list, with a small and a large queue. Both
 * gateways run at once and requests alternate between them, so load from elsewhere on the machine falls on
 * both sizes alike.
 */
export async function benchQueuePosition(large: number, requests: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-bench-queue-"));
  const sizes = [100, large];
  const sim = await startSim(["--load-ms", "0"]);
  const gateways: Array<Awaited<ReturnType<typeof startGateway>>> = [];
  try {
    const queues = [];
    for (const count of sizes) {
      const dataDir = path.join(dir, String(count));
      fs.mkdirSync(dataDir);
      const dbPath = path.join(dataDir, "foreman.db");
      const sample = fillQueuedJobs(dbPath, count);
      const before = wholeQueueRead(dbPath, count > 10_000 ? 5 : 50);
      // No worker: every job stays queued while it is read.
      gateways.push(await startGateway(sim.url, { FOREMAN_DB_PATH: dbPath }, dataDir));
      queues.push({ count, sample, before, one: [] as number[], page: [] as number[] });
    }
    for (let i = 0; i < requests; i++) {
      for (const [k, queue] of queues.entries()) {
        const url = gateways[k]!.url;
        queue.one.push(await timedGet(`${url}/jobs/${queue.sample[i % queue.sample.length]}`));
        // Every tenth round, the page of 100 queued jobs after a sampled id.
        if (i % 10 === 0) {
          const cursor = Buffer.from(queue.sample[(i / 10) % queue.sample.length]!).toString("base64url");
          queue.page.push(await timedGet(`${url}/jobs?state=queued&limit=100&cursor=${cursor}`));
        }
      }
    }
    const results = queues.map((q) => ({ ...q, one: summarize(q.one), page: summarize(q.page) }));
    const [small, big] = results as [(typeof results)[0], (typeof results)[0]];
    return {
      title: `GET /jobs/<id> of a queued job (with its position) and GET /jobs?state=queued&limit=100, 100 vs ${large.toLocaleString("en")} queued jobs`,
      table: table(
        [
          "queued jobs",
          "GET job p50 ms",
          "GET job p99 ms",
          "GET page p50 ms",
          "GET page p99 ms",
          "whole-queue read p50 ms",
        ],
        results.map((r) => [r.count.toLocaleString("en"), r.one.p50, r.one.p99, r.page.p50, r.page.p99, r.before]),
      ),
      summary: [
        `GET /jobs/<id> p50 ratio large/small: ${(big.one.p50 / small.one.p50).toFixed(2)}x; page p50 ratio: ${(big.page.p50 / small.page.p50).toFixed(2)}x`,
        `"whole-queue read": what each position cost before it was counted in SQL (read every queued row, order them in JavaScript)`,
      ],
    };
  } finally {
    await Promise.all([...gateways.map((g) => g.stop()), sim.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
