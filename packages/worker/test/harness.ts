import fs from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import {
  createJobOutcomes,
  createLogger,
  type JobOutcomes,
  type JobRecord,
  type JobState,
  type LoadKey,
  type NewJob,
  openStore,
  type RelayEnd,
  relayPath,
  type Store,
} from "@foreman/shared";
import { simulators } from "../../ollama-sim/test/helpers.js";
import { createTargetClient, type TargetClient } from "../src/target-client.js";

export { nextEvent } from "../../ollama-sim/test/helpers.js";

export interface LogLine {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A worker logger whose JSON lines a test can read, and wait for. */
export function captureLog() {
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const stream = new PassThrough();
  let partial = "";
  stream.on("data", (d: Buffer) => {
    partial += d.toString();
    const complete = partial.split("\n");
    partial = complete.pop()!;
    for (const l of complete) if (l) lines.push(JSON.parse(l) as LogLine);
    for (const wake of waiters) wake();
  });
  return {
    logger: createLogger({ service: "worker", level: "debug", stream }),
    lines,
    /** Resolves with the first line whose message matches, logged already or to come. */
    waitFor(match: string | RegExp): Promise<LogLine> {
      const find = () => lines.find((l) => (typeof match === "string" ? l.message === match : match.test(l.message)));
      return new Promise((resolve) => {
        const check = () => {
          const line = find();
          if (!line) return;
          waiters.delete(check);
          resolve(line);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export type LogCapture = ReturnType<typeof captureLog>;

/** A worker's surroundings: a temp data directory with a real store, this worker holding the lease. */
export interface World {
  dataDir: string;
  store: Store;
  workerId: string;
  outcomes: JobOutcomes;
  log: LogCapture;
  createJob(overrides?: Partial<NewJob>): JobRecord;
  /** Claims the next job (drain order, an attempt counted), for tests that need a job already running. */
  claim(resident?: LoadKey | null): JobRecord;
  /** The next job in drain order, still queued, as the queue runner hands it to the job runner. */
  pick(resident?: LoadKey | null): JobRecord;
  /** Resolves when job `id` next enters `state`; subscribe before the action that moves it. */
  next(id: string, state: JobState): Promise<JobRecord>;
  /** Every committed transition, in order, from the moment of the call. */
  onTransition(listener: (job: JobRecord, from: JobState | null) => void): void;
  relayLines(id: string): string[];
  relayEnds(id: string): RelayEnd[];
}

export const CHAT_REQUEST = {
  model: "llama3.2",
  messages: [{ role: "user", content: "hi" }],
  options: { num_predict: 3 },
};

/**
 * Builds worlds, simulators, target clients and loopback servers for the current test, and after it stops
 * every one of them and removes the temp directories.
 */
export function harness() {
  const cleanups: Array<() => unknown> = [];
  const sim = simulators();
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function world(
    options: { workerId?: string; now?: () => number; inlineResultMaxBytes?: number; workerStaleMs?: number } = {},
  ): World {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-worker-"));
    const listeners = new Set<(job: JobRecord, from: JobState | null) => void>();
    const store = openStore({
      dbPath: path.join(dataDir, "foreman.db"),
      ...(options.now ? { now: options.now } : {}),
      ...(options.workerStaleMs !== undefined ? { workerStaleMs: options.workerStaleMs } : {}),
      onTransition: (job, from) => {
        for (const listener of listeners) listener(job, from);
      },
    });
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    cleanups.push(() => store.close());
    const workerId = options.workerId ?? "worker-under-test";
    store.workerLease.tryAcquire({ workerId, pid: process.pid, hostname: "test-host" });
    const log = captureLog();
    const outcomes = createJobOutcomes({
      transitions: store.transitions.forWorker(workerId),
      artifacts: store.artifacts,
      dataDir,
      logger: log.logger,
      inlineResultMaxBytes: options.inlineResultMaxBytes ?? 64 * 1024,
    });
    const relayLines = (id: string) =>
      fs.existsSync(relayPath(dataDir, id))
        ? fs.readFileSync(relayPath(dataDir, id), "utf8").split("\n").filter(Boolean)
        : [];
    return {
      dataDir,
      store,
      workerId,
      outcomes,
      log,
      createJob: (overrides = {}) =>
        store.transitions.createJob({
          kind: "chat",
          api: "ollama",
          mode: "async",
          model: "llama3.2",
          request: CHAT_REQUEST,
          ...overrides,
        }),
      claim(resident: LoadKey | null = null) {
        const now = options.now?.() ?? Date.now();
        const job = store.claims.claimNext({ workerId, resident, starvationMs: 60_000, now });
        if (!job) throw new Error("nothing to claim");
        return job;
      },
      pick(resident: LoadKey | null = null) {
        const now = options.now?.() ?? Date.now();
        const job = store.claims.peekNext({ workerId, resident, starvationMs: 60_000, now });
        if (!job) throw new Error("nothing queued");
        return job;
      },
      next(id, state) {
        return new Promise((resolve) => {
          const listener = (job: JobRecord) => {
            if (job.id !== id || job.state !== state) return;
            listeners.delete(listener);
            resolve(job);
          };
          listeners.add(listener);
        });
      },
      onTransition(listener) {
        listeners.add(listener);
      },
      relayLines,
      relayEnds: (id) =>
        relayLines(id)
          .filter((l) => l.startsWith("#end "))
          .map((l) => JSON.parse(l.slice(5)) as RelayEnd),
    };
  }

  function client(baseUrl: string): TargetClient {
    const target = createTargetClient({ baseUrl, token: undefined, timeoutMs: 5000 });
    cleanups.push(() => target.close());
    return target;
  }

  /**
   * A tiny target on 127.0.0.1 whose every request (body read in full) goes to `handler`; for answers the
   * simulator does not give. Open connections are destroyed when the test ends.
   */
  async function loopback(
    handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
  ): Promise<{ url: string; server: http.Server }> {
    const sockets = new Set<Socket>();
    const server = http.createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (d: string) => {
        body += d;
      });
      req.on("end", () => handler(req, res, body));
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    );
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  }

  return { sim, world, client, loopback, defer: (cleanup: () => unknown) => cleanups.push(cleanup) };
}

/** Fails with `what` if `promise` has not settled within `ms`: a bound on an awaited event, not a wait. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}
