import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { type LoadKey, loadKeyOf, openStore } from "../packages/shared/src/index.js";
import { fillFinishedJobs } from "./jobs.js";
import {
  findWrk,
  makeTempDir,
  percentile,
  ROOT,
  removeTempDir,
  runLoad,
  runWrkAsync,
  type SummaryRow,
  startGateway,
  startProcess,
  startSim,
  table,
} from "./lib.js";
import { fillQueuedJobs } from "./queue-position.js";

const JOB_BODY = JSON.stringify({
  model: "llama3.2",
  messages: [{ role: "user", content: "hello" }],
  metadata: { batch: 1 },
});

/** Resident set size of a process in MB (Linux /proc; `ps` elsewhere). */
export function rssMb(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]);
    if (Number.isFinite(kb)) return kb / 1024;
  } catch {
    // not Linux
  }
  return Number.NaN;
}

async function timedGet(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return ms;
}

const p50 = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

/** The claim, in-process on the database as the worker runs it, `rounds` times one after another. */
function claimTimes(dbPath: string, rounds: number): number[] {
  const store = openStore({ dbPath });
  store.workerLease.tryAcquire({ workerId: "bench", pid: process.pid, hostname: os.hostname() });
  const times: number[] = [];
  let resident: LoadKey | null = null;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const job = store.claims.claimNext({ workerId: "bench", resident, starvationMs: 120_000, now: Date.now() });
    times.push(performance.now() - t0);
    resident = job ? loadKeyOf(job.model, job.api, job.request) : resident;
  }
  store.workerLease.release("bench");
  store.close();
  return times;
}

/** Sends `count` POST /jobs, `concurrency` at a time, over keep-alive connections. */
async function postJobs(url: string, count: number, concurrency: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL(`${url}/jobs`);
  const body = Buffer.from(JOB_BODY);
  let sent = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          hostname: target.hostname,
          port: target.port,
          path: target.pathname,
          method: "POST",
          agent,
          headers: { "content-type": "application/json", "content-length": body.length },
        },
        (res) => {
          res.resume();
          res.on("end", () =>
            res.statusCode === 202 ? resolve() : reject(new Error(`POST /jobs: ${res.statusCode}`)),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < count) {
        sent++;
        await one();
      }
    }),
  );
  agent.destroy();
}

/**
 * Flat at scale: one database with `queued` queued and `finished` finished jobs against one with 100 queued
 * and none finished, both gateways up at once with requests alternating between them. Then the RSS of a
 * gateway after `posts` POST /jobs with no worker, and of the worker started on that queue.
 */
export async function benchScale(options: {
  queued: number;
  finished: number;
  posts: number;
  durationMs: number;
  rounds: number;
}) {
  const { queued, finished, posts, durationMs, rounds } = options;
  const dir = makeTempDir("foreman-bench-scale-");
  const sim = await startSim(["--load-ms", "0", "--tps", "1000000"]);
  const gateways: Array<Awaited<ReturnType<typeof startGateway>>> = [];
  const t0 = performance.now();
  const dbs = [];
  try {
    for (const [label, q, f] of [
      ["100 queued", 100, 0],
      [`${queued.toLocaleString("en")} queued + ${finished.toLocaleString("en")} finished`, queued, finished],
    ] as const) {
      const dataDir = path.join(dir, String(q));
      fs.mkdirSync(dataDir);
      const dbPath = path.join(dataDir, "foreman.db");
      if (f > 0) fillFinishedJobs(dbPath, f);
      const sample = fillQueuedJobs(dbPath, q);
      gateways.push(
        await startGateway(sim.url, { FOREMAN_DB_PATH: dbPath, FOREMAN_MAX_QUEUED_JOBS: "100000000" }, dataDir),
      );
      dbs.push({ label, dbPath, sample, get: [] as number[], list: [] as number[], claim: [] as number[], post: 0 });
    }
    const fillSeconds = (performance.now() - t0) / 1000;
    for (let i = 0; i < rounds; i++) {
      for (const [k, db] of dbs.entries()) {
        const url = gateways[k]!.url;
        db.get.push(await timedGet(`${url}/jobs/${db.sample[i % db.sample.length]}`));
        if (i % 5 === 0) db.list.push(await timedGet(`${url}/jobs?state=queued&limit=100`));
      }
    }
    const wrk = findWrk();
    for (const [k, db] of dbs.entries()) {
      const load = { url: `${gateways[k]!.url}/jobs`, body: JOB_BODY, concurrency: 32, durationMs };
      db.post = (wrk ? await runWrkAsync({ wrk, ...load }) : await runLoad({ ...load, expectStatus: 202 })).rps;
    }
    await Promise.all(gateways.map((g) => g.stop()));
    gateways.length = 0;
    for (const db of dbs) db.claim = claimTimes(db.dbPath, 1000);

    // RSS: a fresh gateway on an empty database takes `posts` jobs with no worker running.
    const rssDir = path.join(dir, "rss");
    fs.mkdirSync(rssDir);
    const gateway = await startGateway(sim.url, { FOREMAN_MAX_QUEUED_JOBS: "100000000" }, rssDir);
    gateways.push(gateway);
    const gatewayStart = rssMb(gateway.child.pid!);
    // Sampled through the posts too: the figure after them depends on where V8's old generation stands in its
    // collect-and-grow cycle at that moment.
    const during: number[] = [];
    const sampler = setInterval(() => during.push(rssMb(gateway.child.pid!)), 1000);
    await postJobs(gateway.url, posts, 32).finally(() => clearInterval(sampler));
    const gatewayAfter = rssMb(gateway.child.pid!);
    const duringMean = during.reduce((a, b) => a + b, 0) / during.length;
    // Then the worker starts on that queue; its RSS is read once it has run 1,000 of the jobs.
    const worker = await startProcess(
      process.execPath,
      [path.join(ROOT, "packages/worker/dist/main.js")],
      { PATH: process.env.PATH, FOREMAN_DATA_DIR: rssDir, FOREMAN_OLLAMA_URL: sim.url, FOREMAN_LOG_LEVEL: "info" },
      /"target up"/,
    );
    let workerRss = Number.NaN;
    try {
      for (;;) {
        const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as { requests: { total: number } };
        if (stats.requests.total >= 1000) break;
        if (worker.child.exitCode !== null) throw new Error(`worker exited: ${worker.tail(5).join("\n")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      workerRss = rssMb(worker.child.pid!);
    } finally {
      await worker.stop();
    }

    const [small, large] = dbs.map((db) => ({
      label: db.label,
      post: db.post,
      get: p50(db.get),
      list: p50(db.list),
      claim: p50(db.claim),
    })) as [
      { label: string; post: number; get: number; list: number; claim: number },
      { label: string; post: number; get: number; list: number; claim: number },
    ];
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    const rows: SummaryRow[] = [
      {
        measure: `POST /jobs at concurrency 32, jobs/s (${large.label})`,
        foreman: large.post,
        reference: `${small.post.toFixed(0)} with 100 queued`,
        goal: "≥ 5,000 jobs/s; within 2x of 100 queued",
      },
      {
        measure: `GET /jobs/<id> with position p50 ms (${large.label})`,
        foreman: large.get,
        reference: `${small.get.toFixed(2)} with 100 queued (${ratio(large.get, small.get)})`,
        goal: "within 2x of 100 queued",
      },
      {
        measure: `GET /jobs?state=queued&limit=100 p50 ms (${large.label})`,
        foreman: large.list,
        reference: `${small.list.toFixed(2)} with 100 queued (${ratio(large.list, small.list)})`,
        goal: "within 2x of 100 queued",
      },
      {
        measure: `claim p50 ms (${large.label})`,
        foreman: large.claim,
        reference: `${small.claim.toFixed(3)} with 100 queued (${ratio(large.claim, small.claim)})`,
        goal: "within 2x of 100 queued",
      },
      {
        measure: `gateway RSS MB after ${posts.toLocaleString("en")} POST /jobs (worker stopped)`,
        foreman: gatewayAfter,
        reference: `${gatewayStart.toFixed(0)} at start; ${duringMean.toFixed(0)} mean, ${Math.max(...during).toFixed(0)} max during`,
        goal: "≤ 120 MB",
      },
      {
        measure: `worker RSS MB on that queue, after 1,000 jobs run`,
        foreman: workerRss,
        reference: "—",
        goal: "≤ 120 MB",
      },
    ];
    return {
      sections: [
        {
          title: `flat at scale: ${large.label} vs 100 queued (filled in ${fillSeconds.toFixed(0)} s); RSS after ${posts.toLocaleString("en")} POST /jobs`,
          table: table(
            ["database", "POST /jobs/s c32", "GET job p50 ms", "GET list p50 ms", "claim p50 ms"],
            [small, large].map((r) => [r.label, r.post, r.get, r.list, r.claim]),
          ),
          summary: [
            `gateway RSS ${gatewayStart.toFixed(0)} MB at start, ${gatewayAfter.toFixed(0)} MB after ${posts.toLocaleString("en")} POST /jobs (each second during them: mean ${duringMean.toFixed(0)}, max ${Math.max(...during).toFixed(0)}); worker ${workerRss.toFixed(0)} MB after running 1,000 of them`,
          ],
        },
      ],
      rows,
    };
  } finally {
    await Promise.all([...gateways.map((g) => g.stop()), sim.stop()]);
    removeTempDir(dir);
  }
}
