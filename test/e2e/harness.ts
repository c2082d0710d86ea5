import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { isTerminal, type JobState } from "../../packages/shared/src/job-states.js";
import { makeTempDir, removeTempDirs } from "../temp-dirs.js";

/**
 * The end-to-end harness: starts gateway and worker as real child processes (their built `dist/main.js`)
 * on free loopback ports with a temp data dir, captures their JSON log lines so tests can await events
 * instead of sleeping, and always stops everything it started.
 */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ENTRY = {
  gateway: path.join(ROOT, "packages/gateway/dist/main.js"),
  worker: path.join(ROOT, "packages/worker/dist/main.js"),
  sim: path.join(ROOT, "packages/ollama-sim/dist/main.js"),
  supervisor: path.join(ROOT, "scripts/supervisor.mjs"),
};

export type LogLine = Record<string, unknown> & { message?: string; level?: string };

export class Proc {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  private waiters: Array<{ test: (line: string) => boolean; resolve: (line: string) => void }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    file: string,
    env: NodeJS.ProcessEnv,
    args: string[] = [],
  ) {
    this.child = spawn(process.execPath, [file, ...args], { env, stdio: ["ignore", "pipe", "pipe"], cwd: ROOT });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      readline.createInterface({ input: stream }).on("line", (line) => this.onLine(line));
    }
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
    live.add(this);
    this.exited.then(() => live.delete(this));
  }

  private onLine(line: string): void {
    this.lines.push(line);
    if (process.env.E2E_VERBOSE) process.stderr.write(`[${this.name}] ${line}\n`);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /**
   * Resolves with the first matching line, among those from index `from` on (already seen or future);
   * rejects after `timeoutMs`. Pass `proc.lines.length` as `from` to wait only for lines still to come.
   */
  waitForLine(test: (line: string) => boolean, timeoutMs = 10_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        test,
        resolve: (l: string) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `${this.name}: no matching log line within ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).join("\n")}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Waits for a JSON log line whose message contains `text`, among lines from index `from` on. */
  async waitForLog(text: string, timeoutMs = 10_000, from = 0): Promise<LogLine> {
    const line = await this.waitForLine((l) => parse(l)?.message?.includes(text) === true, timeoutMs, from);
    return parse(line)!;
  }

  logs(): LogLine[] {
    return this.lines.map(parse).filter((l): l is LogLine => l !== null);
  }

  kill(signal: NodeJS.Signals = "SIGTERM") {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

function parse(line: string): LogLine | null {
  try {
    const v = JSON.parse(line);
    return v && typeof v === "object" ? (v as LogLine) : null;
  } catch {
    return null;
  }
}

const live = new Set<Proc>();

/**
 * Kills every process the harness started and still running, then removes the temporary data
 * directories made so far (their processes are gone); call from `after`/`afterEach`.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill("SIGKILL")));
  removeTempDirs(dataDirs);
  dataDirs.clear();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const dataDirs = new Set<string>();

export function tempDataDir(): string {
  const dir = makeTempDir("foreman-e2e-");
  dataDirs.add(dir);
  return dir;
}

export interface Foreman {
  dataDir: string;
  port: number;
  url: string;
  env: NodeJS.ProcessEnv;
  gateway?: Proc;
  worker?: Proc;
  startGateway(extra?: NodeJS.ProcessEnv): Promise<Proc>;
  startWorker(extra?: NodeJS.ProcessEnv, name?: string): Proc;
  /**
   * The job once it has ended, through the API's long poll, which answers as soon as it does: a sync
   * caller's answer can come before the worker has recorded the job's end.
   */
  endedJob(id: string): Promise<{ state: string; attempts: number; error: string | null }>;
}

/** Environment for foreman children: only what the test sets, plus PATH, so a developer's FOREMAN_* never leaks in. */
export async function foreman(
  options: { ollamaUrl?: string; env?: NodeJS.ProcessEnv; dataDir?: string } = {},
): Promise<Foreman> {
  const dataDir = options.dataDir ?? tempDataDir();
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    FOREMAN_HOST: "127.0.0.1",
    FOREMAN_PORT: String(port),
    FOREMAN_DATA_DIR: dataDir,
    FOREMAN_OLLAMA_URL: options.ollamaUrl ?? "http://127.0.0.1:9",
    FOREMAN_HEARTBEAT_MS: "100",
    FOREMAN_WORKER_STALE_MS: "1000",
    FOREMAN_LOG_LEVEL: "debug",
    // Test receivers listen on loopback, which webhook deliveries refuse unless the operator allows it.
    FOREMAN_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1,::1",
    ...options.env,
  };
  const f: Foreman = {
    dataDir,
    port,
    url: `http://127.0.0.1:${port}`,
    env,
    async startGateway(extra = {}) {
      const p = new Proc("gateway", ENTRY.gateway, { ...env, ...extra });
      f.gateway = p;
      await p.waitForLog("gateway listening");
      return p;
    },
    startWorker(extra = {}, name = "worker") {
      const p = new Proc(name, ENTRY.worker, { ...env, ...extra });
      f.worker = p;
      return p;
    },
    async endedJob(id) {
      const token = env.FOREMAN_API_TOKEN;
      const res = await fetch(`${f.url}/jobs/${id}?wait=30`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      const job = (await res.json()) as { state: string; attempts: number; error: string | null };
      if (!isTerminal(job.state as JobState)) throw new Error(`job ${id} is still ${job.state}`);
      return job;
    },
  };
  return f;
}
