import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_MODELS, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { freePort } from "../e2e/harness.js";
import { checkJobs, checkWebhooks, describeHistory, openFacts } from "./checks.js";
import {
  type AsyncPlan,
  type AsyncResult,
  DB_BUSY,
  runAsync,
  runSync,
  type SyncEnding,
  type SyncPlan,
  type SyncResult,
} from "./clients.js";
import { Cluster, type MemberName } from "./cluster.js";
import { startFlappingReceiver } from "./flapping-receiver.js";
import { createRng, type Rng } from "./prng.js";

export interface ChaosOptions {
  jobs: number;
  seed: number;
  /** Concurrent callers. */
  lanes?: number;
  /** No faults at all: the same workload and checks, to tell the harness's noise from foreman's. */
  calm?: boolean;
  /** Progress lines (the CLI prints them; the test stays quiet). */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  jobs: number;
  durationMs: number;
  phasesMs: { startup: number; load: number; settle: number; stop: number };
  accepted: { sync: number; async: number };
  databaseJobs: number;
  states: Record<string, number>;
  syncEndings: Record<SyncEnding, number>;
  syncErrors: Record<string, number>;
  failedJobErrors: Record<string, number>;
  asyncCancels: { ok: number; alreadyEnded: number };
  asyncFollowers: { polled: number; streamed: number };
  asyncSubmitRetries: number;
  kills: Record<MemberName, number>;
  faults: { targetRefusals: number; targetDieMidStream: number; receiverFlaps: Record<string, number> };
  webhooks: { events: number; arrivals: number; answered: Record<string, number> };
  processesStarted: number;
  modelLoads: number;
  dbBusyInLogs: number;
  violations: string[];
}

const MODELS = ["llama3.2", "qwen3:8b", "gemma3:4b"] as const;
const UNKNOWN_MODEL = "no-such-model:latest";
const EMBED_MODEL = "nomic-embed-text:latest";

type JobPlan = SyncPlan | AsyncPlan;

const FAULT_KINDS = ["kill-worker", "kill-gateway", "target-refuse", "target-die", "receiver-flap"] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

/** The workload, fixed by the seed before anything runs. */
function planJobs(rng: Rng, jobs: number): JobPlan[] {
  const plans: JobPlan[] = [];
  for (let index = 0; index < jobs; index++) {
    const model = rng.chance(0.04) ? UNKNOWN_MODEL : rng.pick(MODELS);
    const tokens = rng.int(4, 40);
    const gateway = rng.pick(["gateway-a", "gateway-b"] as const);
    if (rng.chance(0.45)) {
      const route = rng.weighted({ "ollama-chat": 5, "ollama-generate": 3, "openai-chat": 2 });
      const stream = route === "openai-chat" ? true : rng.chance(0.8);
      plans.push({
        index,
        mode: "sync",
        route,
        stream,
        model,
        tokens,
        gateway,
        abortAfterFirstChunk: stream && rng.chance(0.04),
      });
    } else {
      plans.push({
        index,
        mode: "async",
        model,
        tokens,
        gateway,
        chat: rng.chance(0.6),
        secret: rng.chance(0.5) ? "job" : "default",
        terminalEventsOnly: rng.chance(0.15),
        follow: rng.chance(0.3) ? "none" : rng.chance(0.35) ? "stream" : "poll",
        cancelAfterMs: rng.chance(0.08) ? rng.int(0, 300) : undefined,
      });
    }
  }
  return plans;
}

const whsec = () => `whsec_${randomBytes(32).toString("base64")}`;

function tally<K extends string>(keys: Iterable<K>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** Error texts grouped: job ids and numbers vary, the reason does not. */
const normalizeError = (text: string) =>
  text
    .replace(/[0-9A-HJKMNP-TV-Z]{26}/g, "<id>")
    .replace(/\d+(\.\d+)?/g, "N")
    .slice(0, 160);

/**
 * A mixed workload of sync and async jobs with webhooks, against two gateways and one worker on one
 * database, while the processes are `kill -9`ed and restarted, the target refuses connections and dies
 * mid-stream, and the webhook receiver fails, hangs and closes its port. Then everything is healed, the run
 * waits (bounded) for every job and webhook to settle, stops every process with SIGTERM, and checks what
 * the callers saw, the database and the receiver against foreman's guarantees. Never throws for a broken
 * guarantee: the report's `violations` says what broke.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  // Whatever was started is stopped and removed, in reverse order, however the run ends.
  const cleanup: Array<() => unknown> = [];
  running.add(cleanup);
  try {
    return await run(options, cleanup);
  } finally {
    running.delete(cleanup);
    await runCleanup(cleanup);
  }
}

const running = new Set<Array<() => unknown>>();

async function runCleanup(cleanup: Array<() => unknown>): Promise<void> {
  for (const step of cleanup.splice(0).reverse()) {
    try {
      await step();
    } catch {
      // One failed step must not keep the others from running.
    }
  }
}

/** For an interrupted CLI run (Ctrl-C): stops every process and removes every directory the runs made. */
export async function abortChaosRuns(): Promise<void> {
  await Promise.all([...running].map(runCleanup));
}

async function run(options: ChaosOptions, cleanup: Array<() => unknown>): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const rng = createRng(options.seed);
  const plans = planJobs(rng.fork("plan"), options.jobs);
  const chaosRng = rng.fork("chaos");
  const lanes = options.lanes ?? 8;
  const violations: string[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-chaos-"));
  cleanup.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  // One model loads slowly and one streams slowly, so kills and target faults land in `loading` and
  // mid-stream often enough; the embedder is pinned, and must never be evicted by a worker model.
  const sim = await startSimulator({
    loadMs: 20,
    tokensPerSecond: 1000,
    models: DEFAULT_MODELS.map((m) =>
      m.name === "qwen3:8b" ? { ...m, loadMs: 250 } : m.name === "gemma3:4b" ? { ...m, tokensPerSecond: 250 } : m,
    ),
  });
  cleanup.push(() => sim.close());
  const modelEvents = { loads: 0, embedderUnloads: [] as string[] };
  sim.on((event) => {
    if (event.type === "load") modelEvents.loads++;
    if (event.type === "unload" && event.model === EMBED_MODEL) modelEvents.embedderUnloads.push(event.reason);
  });
  const secrets = { default: whsec(), job: whsec() };
  const receiver = await startFlappingReceiver(secrets);
  cleanup.push(() => receiver.close());
  const syncWaitMs = 60_000;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    FOREMAN_HOST: "127.0.0.1",
    FOREMAN_DATA_DIR: dataDir,
    FOREMAN_OLLAMA_URL: sim.url,
    FOREMAN_EMBED_MODEL: EMBED_MODEL,
    FOREMAN_LOG_LEVEL: "info",
    FOREMAN_HEARTBEAT_MS: "100",
    FOREMAN_WORKER_STALE_MS: "1000",
    FOREMAN_POLL_MS: "200",
    FOREMAN_QUEUE_POLL_MS: "200",
    FOREMAN_TARGET_DOWN_PROBE_MAX_MS: "300",
    FOREMAN_STARVATION_MS: "5000",
    FOREMAN_SYNC_WAIT_MS: String(syncWaitMs),
    FOREMAN_SHUTDOWN_GRACE_MS: "2000",
    FOREMAN_WEBHOOK_SECRET: secrets.default,
    // Loopback receivers must be allowed explicitly once webhook targets are checked for private addresses.
    FOREMAN_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
    FOREMAN_WEBHOOK_TIMEOUT_MS: "500",
    FOREMAN_WEBHOOK_RETRY_BASE_MS: "50",
    FOREMAN_WEBHOOK_RETRY_MAX_DELAY_MS: "500",
  };
  const cluster = new Cluster(env, { a: await freePort(), b: await freePort() });
  cleanup.push(() => cluster.forceStop());
  const faults = { targetRefusals: 0, targetDieMidStream: 0, receiverFlaps: {} as Record<string, number> };
  const syncResults: SyncResult[] = [];
  const asyncResults: AsyncResult[] = [];
  const phasesMs = { startup: 0, load: 0, settle: 0, stop: 0 };
  const startupStarted = Date.now();
  await Promise.all([cluster.start("gateway-a"), cluster.start("gateway-b"), cluster.start("worker")]);
  await cluster.workerActive(30_000);
  phasesMs.startup = Date.now() - startupStarted;
  log(`seed ${options.seed}: ${options.jobs} jobs, ${lanes} callers, data dir ${dataDir}`);

  // --- load, with chaos beside it ---
  const loadStarted = Date.now();
  const deadline = loadStarted + 120_000 + options.jobs * 600;
  let next = 0;
  let finished = 0;
  const lane = async () => {
    while (next < plans.length && Date.now() < deadline) {
      const plan = plans[next++]!;
      if (plan.mode === "sync") syncResults.push(await runSync(cluster, plan, syncWaitMs + 60_000));
      else {
        asyncResults.push(
          await runAsync(cluster, plan, {
            seed: options.seed,
            webhookUrls: receiver.urls,
            jobSecret: secrets.job,
            deadline,
          }),
        );
      }
      finished++;
      if (finished % 50 === 0) log(`  ${finished}/${plans.length} jobs through their callers`);
    }
  };
  let loadDone = false;
  const load = Promise.all(Array.from({ length: lanes }, lane)).finally(() => {
    loadDone = true;
  });
  const restarts: Promise<void>[] = [];
  const restartLater = (name: MemberName, ms: number) =>
    restarts.push(
      (async () => {
        await new Promise((r) => setTimeout(r, ms));
        await cluster.start(name).catch((err: Error) => {
          violations.push(`could not start ${name} again: ${err.message}`);
        });
      })(),
    );
  /** One fault now; false when it cannot happen at this moment (that process is already down). */
  const inject = async (kind: FaultKind): Promise<boolean> => {
    const ms = chaosRng.int(200, 1500);
    const restartMs = chaosRng.int(50, 700);
    if (kind === "kill-worker") {
      if (cluster.isDown("worker")) return false;
      log("  kill -9 worker");
      await cluster.kill("worker");
      restartLater("worker", restartMs);
    } else if (kind === "kill-gateway") {
      const name = chaosRng.pick(["gateway-a", "gateway-b"] as const);
      // One gateway stays up, so callers always have somewhere to go.
      if (cluster.isDown("gateway-a") || cluster.isDown("gateway-b")) return false;
      log(`  kill -9 ${name}`);
      await cluster.kill(name);
      restartLater(name, restartMs);
    } else if (kind === "target-refuse") {
      log(`  target refuses connections for ${ms} ms`);
      faults.targetRefusals++;
      await sim.faults.refuseConnections(ms);
    } else if (kind === "target-die") {
      const count = chaosRng.int(1, 3);
      const afterChunks = chaosRng.int(0, 4);
      log(`  target dies mid-stream on the next ${count} streams after ${afterChunks} chunks`);
      faults.targetDieMidStream++;
      sim.faults.dieMidStream({ count, afterChunks });
    } else {
      const mode = chaosRng.pick(["fail", "hang", "refuse"] as const);
      if (!(await receiver.flap(mode, ms))) return false;
      log(`  webhook receiver: ${mode} for ${ms} ms`);
      faults.receiverFlaps[mode] = (faults.receiverFlaps[mode] ?? 0) + 1;
    }
    return true;
  };
  // Faults come in shuffled rounds of every kind, and the first round always completes (even after a
  // quick load), so every run meets each kind of fault at least once. A budget proportional to the jobs
  // bounds the run's length: each kill costs a restart and a lease takeover.
  const bag: FaultKind[] = [];
  let injected = 0;
  const budget = Math.max(FAULT_KINDS.length, Math.ceil(options.jobs / 6));
  while (!options.calm && injected < budget && (!loadDone || injected < FAULT_KINDS.length)) {
    // The moments of the faults: random, from the seed.
    const gap = new Promise((r) => setTimeout(r, chaosRng.int(400, 1400)));
    await (loadDone ? gap : Promise.race([load, gap]));
    if (loadDone && injected >= FAULT_KINDS.length) break;
    if (bag.length === 0) bag.push(...chaosRng.shuffle(FAULT_KINDS));
    const kind = bag.pop()!;
    if (await inject(kind)) injected++;
    else bag.unshift(kind);
  }
  await load;
  if (Date.now() >= deadline) violations.push("the callers did not finish before the run's deadline");
  await Promise.all(restarts);
  phasesMs.load = Date.now() - loadStarted;

  // --- heal, then wait (bounded) for every job and webhook to settle ---
  const settleStarted = Date.now();
  await sim.faults.clear();
  await receiver.heal();
  const facts = openFacts(dataDir);
  cleanup.push(() => facts.close());
  const settleBy = Date.now() + 60_000 + options.jobs * 100;
  for (;;) {
    const { running, pending } = facts.unsettled();
    const undelivered = running + pending === 0 ? facts.eventIds().filter((id) => !receiver.accepted.has(id)) : [];
    if (running + pending + undelivered.length === 0) break;
    if (Date.now() > settleBy) {
      violations.push(
        `not settled within ${settleBy - settleStarted} ms: ${running} jobs not ended, ${pending} webhook events pending, ${undelivered.length} delivered events not seen by the receiver`,
      );
      break;
    }
    // Polling the database is the only way to see another process's commits; 200 ms keeps it cheap.
    await new Promise((r) => setTimeout(r, 200));
  }
  phasesMs.settle = Date.now() - settleStarted;

  // --- stop: every process must exit 0 on SIGTERM ---
  const stopStarted = Date.now();
  await cluster.stop(20_000);
  phasesMs.stop = Date.now() - stopStarted;

  // --- check ---
  const final = facts.read();
  /** A job as the lead needs it to find the cause: its id and every recorded move. */
  const jobTrace = (id: string | undefined) =>
    id ? `job ${id}, history: ${describeHistory(final.history.get(id) ?? [])}` : "job id unknown";
  const acceptedSync = syncResults.flatMap((r) => (r.jobId ? [r.jobId] : []));
  const acceptedAsync = asyncResults.flatMap((r) => (r.jobId ? [r.jobId] : []));
  violations.push(...checkJobs(final, new Set([...acceptedSync, ...acceptedAsync])));
  violations.push(...checkWebhooks(final, receiver));
  for (const r of syncResults) {
    if (r.violation) violations.push(`sync caller ${r.index} (${jobTrace(r.jobId)}): ${r.violation}`);
    if (r.dbBusy) violations.push(`sync caller ${r.index} (job ${r.jobId ?? "unknown"}) saw a database-busy error`);
  }
  const stateOf = new Map(final.jobs.map((j) => [j.id, j.state]));
  for (const r of syncResults) {
    const state = r.jobId ? stateOf.get(r.jobId) : undefined;
    if (!state) continue;
    // What the caller was told must be what the database recorded.
    const agrees = r.ending === "done" ? state === "done" : r.ending.startsWith("error") ? state !== "done" : true;
    if (!agrees)
      violations.push(`sync caller ${r.index} (${jobTrace(r.jobId)}) ended with ${r.ending}, the job is ${state}`);
  }
  for (const r of asyncResults) {
    for (const v of r.violations) violations.push(`async caller ${r.index} (${jobTrace(r.jobId)}): ${v}`);
    if (r.dbBusy) violations.push(`async caller ${r.index} (job ${r.jobId}) saw a database-busy error`);
    const state = r.jobId ? stateOf.get(r.jobId) : undefined;
    if (r.finalState && state && state !== r.finalState) {
      violations.push(`${jobTrace(r.jobId)}: GET said ${r.finalState}, the database says ${state}`);
    }
    if (r.streamEnd && state && (r.streamEnd === "done") !== (state === "done")) {
      violations.push(`${jobTrace(r.jobId)}: its stream ended with ${r.streamEnd}, the database says ${state}`);
    }
  }
  for (const reason of modelEvents.embedderUnloads) {
    violations.push(`the resident embedder ${EMBED_MODEL} was unloaded (${reason})`);
  }
  for (const d of cluster.deaths) {
    violations.push(
      `${d.name} (pid ${d.pid}) ${d.why}: code ${d.code}, signal ${d.signal}; last lines:\n    ${d.lastLines.join("\n    ")}`,
    );
  }
  const endings = [
    "done",
    "error-line",
    "error-status",
    "cut-gateway-killed-before-headers",
    "cut-gateway-killed-mid-stream",
    "caller-aborted",
    "violation",
  ] as const;
  const syncEndings = Object.fromEntries(endings.map((e) => [e, 0])) as Record<SyncEnding, number>;
  for (const r of syncResults) syncEndings[r.ending]++;
  return {
    seed: options.seed,
    jobs: options.jobs,
    durationMs: Date.now() - started,
    phasesMs,
    accepted: { sync: acceptedSync.length, async: acceptedAsync.length },
    databaseJobs: final.jobs.length,
    states: tally(final.jobs.map((j) => j.state)),
    syncEndings,
    syncErrors: tally(syncResults.flatMap((r) => (r.error ? [`${r.status} ${normalizeError(r.error)}`] : []))),
    failedJobErrors: tally(final.jobs.flatMap((j) => (j.state === "failed" ? [normalizeError(j.error ?? "")] : []))),
    asyncCancels: {
      ok: asyncResults.filter((r) => r.cancel === "ok").length,
      alreadyEnded: asyncResults.filter((r) => r.cancel === "already-ended").length,
    },
    asyncFollowers: {
      polled: asyncResults.filter((r) => r.finalState).length,
      streamed: asyncResults.filter((r) => r.streamEnd).length,
    },
    asyncSubmitRetries: asyncResults.reduce((n, r) => n + Math.max(0, r.submitTries - 1), 0),
    kills: { ...cluster.kills },
    faults,
    webhooks: {
      events: [...final.outbox.values()].reduce((n, rows) => n + rows.length, 0),
      arrivals: receiver.arrivals(),
      answered: { ...receiver.answered },
    },
    processesStarted: cluster.started(),
    modelLoads: modelEvents.loads,
    dbBusyInLogs: cluster.grepLogs((l) => DB_BUSY.test(l)).length,
    violations,
  };
}

export function formatReport(r: ChaosReport): string {
  const kv = (o: Record<string, number>) =>
    Object.entries(o)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ") || "none";
  const lines = [
    `chaos run: seed ${r.seed} (replay with --seed ${r.seed}), ${r.jobs} jobs, ${(r.durationMs / 1000).toFixed(1)} s (startup ${(r.phasesMs.startup / 1000).toFixed(1)} s, load ${(r.phasesMs.load / 1000).toFixed(1)} s, settle ${(r.phasesMs.settle / 1000).toFixed(1)} s, stop ${(r.phasesMs.stop / 1000).toFixed(1)} s)`,
    `  accepted: ${r.accepted.sync} sync, ${r.accepted.async} async (${r.asyncSubmitRetries} submit retries); ${r.databaseJobs} jobs in the database: ${kv(r.states)}`,
    `  kills (kill -9): ${kv(r.kills)}; processes started: ${r.processesStarted}; model loads on the target: ${r.modelLoads}`,
    `  target faults: ${r.faults.targetRefusals} refusals, ${r.faults.targetDieMidStream} die-mid-stream; receiver flaps: ${kv(r.faults.receiverFlaps)}`,
    `  sync callers: ${kv(r.syncEndings)}`,
    `  async callers: ${r.asyncFollowers.polled} long-polled to the end, ${r.asyncFollowers.streamed} streamed to the end; cancels: ${r.asyncCancels.ok} canceled, ${r.asyncCancels.alreadyEnded} already ended`,
    `  webhooks: ${r.webhooks.events} events, ${r.webhooks.arrivals} arrivals (answered ${kv(r.webhooks.answered)})`,
    `  errors sync callers got: ${kv(r.syncErrors)}`,
    `  failed jobs' errors: ${kv(r.failedJobErrors)}`,
    `  "database is locked" in process logs: ${r.dbBusyInLogs}`,
    r.violations.length === 0 ? "  violations: none" : `  violations: ${r.violations.length}`,
    ...r.violations.slice(0, 50).map((v) => `    - ${v}`),
    ...(r.violations.length > 50 ? [`    … and ${r.violations.length - 50} more`] : []),
  ];
  return lines.join("\n");
}
