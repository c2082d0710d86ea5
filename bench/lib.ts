import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Shared plumbing of the benchmarks: processes on loopback, a keep-alive load generator, percentiles. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const started = new Set<ChildProcess>();
const tempDirs = new Set<string>();
// On any exit, success or a thrown benchmark: no process keeps running and no temp directory stays behind.
process.on("exit", () => {
  for (const c of started) c.kill("SIGKILL");
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
// Ctrl-C ends the process without the exit event unless it is handled.
process.once("SIGINT", () => process.exit(130));

/** A temporary directory removed when the benchmark process exits, or earlier by `removeTempDir`. */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a process and resolves once a line of its output matches `ready`. Its stdout and stderr go to a
 * file, not a pipe: a pipe's reader is woken by every log line, and here the reader would be this process,
 * the client whose latencies are being measured.
 */
export async function startProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  timeoutMs = 15_000,
) {
  const logDir = makeTempDir("foreman-bench-log-");
  const logFile = path.join(logDir, "output.log");
  const fd = fs.openSync(logFile, "a");
  const child = spawn(cmd, args, { env, stdio: ["ignore", fd, fd], cwd: ROOT });
  fs.closeSync(fd);
  started.add(child);
  child.on("exit", () => started.delete(child));
  /** The last `n` lines the process wrote. */
  const tail = (n: number) => fs.readFileSync(logFile, "utf8").split("\n").filter(Boolean).slice(-n);
  await new Promise<void>((resolve, reject) => {
    const watcher = fs.watch(logFile, () => check());
    const done = (err?: Error) => {
      watcher.close();
      clearTimeout(timer);
      child.off("exit", exited);
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (tail(Number.POSITIVE_INFINITY).some((l) => ready.test(l))) done();
    };
    const exited = (code: number | null) => done(new Error(`${cmd} exited ${code}: ${tail(5).join("\n")}`));
    const timer = setTimeout(() => done(new Error(`${cmd} did not start: ${tail(5).join("\n")}`)), timeoutMs);
    child.on("exit", exited);
    check();
  });
  return {
    child,
    tail,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

export async function startSim(args: string[] = []) {
  const port = await freePort();
  const p = await startProcess(
    process.execPath,
    [path.join(ROOT, "packages/ollama-sim/dist/main.js"), "--port", String(port), ...args],
    { PATH: process.env.PATH },
    /listening/,
  );
  return { ...p, port, url: `http://127.0.0.1:${port}` };
}

export async function startGateway(targetUrl: string, extraEnv: NodeJS.ProcessEnv = {}, dataDirIn?: string) {
  const port = await freePort();
  const dataDir = dataDirIn ?? makeTempDir("foreman-bench-");
  const p = await startProcess(
    process.execPath,
    [path.join(ROOT, "packages/gateway/dist/main.js")],
    {
      PATH: process.env.PATH,
      FOREMAN_PORT: String(port),
      FOREMAN_DATA_DIR: dataDir,
      FOREMAN_OLLAMA_URL: targetUrl,
      FOREMAN_LOG_LEVEL: "info",
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
      ...extraEnv,
    },
    /gateway listening/,
  );
  return { ...p, port, url: `http://127.0.0.1:${port}`, dataDir };
}

/**
 * Two bare Node streaming proxies chained in front of `targetUrl` (bench/hop-proxy.mjs): the floor of two
 * Node processes relaying a stream on this machine, with nothing of foreman's in them.
 */
export async function startTwoHops(targetUrl: string) {
  const hop = async (upstream: string) => {
    const port = await freePort();
    const p = await startProcess(
      process.execPath,
      [path.join(ROOT, "bench/hop-proxy.mjs"), String(port), upstream],
      { PATH: process.env.PATH },
      /hop listening/,
    );
    return { ...p, url: `http://127.0.0.1:${port}` };
  };
  const inner = await hop(targetUrl);
  const outer = await hop(inner.url);
  return { url: outer.url, stop: () => Promise.all([outer.stop(), inner.stop()]).then(() => undefined) };
}

export function findNginx(): string | null {
  for (const candidate of ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  const which = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() : null;
}

/** An nginx reverse proxy to `targetPort` on loopback, configured at run time: one worker, upstream keep-alive. */
export async function startNginx(nginx: string, targetPort: number) {
  const port = await freePort();
  const prefix = makeTempDir("foreman-bench-nginx-");
  const conf = path.join(prefix, "nginx.conf");
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream target { server 127.0.0.1:${targetPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://target;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`,
  );
  const child = spawn(nginx, ["-p", prefix, "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  child.on("exit", () => started.delete(child));
  await waitForPort(port);
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGQUIT");
      }),
  };
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

/** Percentile of sorted numbers (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Closed-loop load: `concurrency` loops each send the next request as soon as the previous answer has been
 * read, over keep-alive connections, for `durationMs` after a warm-up. Latencies in ms.
 */
export async function runLoad(options: {
  url: string;
  method?: string;
  body?: string;
  concurrency: number;
  durationMs: number;
  warmupMs?: number;
  /** The status a successful answer has (200 by default). */
  expectStatus?: number;
}): Promise<LoadResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const body = options.body ? Buffer.from(options.body) : undefined;
  const one = () =>
    new Promise<boolean>((resolve) => {
      const req = http.request(
        {
          hostname: target.hostname,
          port: target.port,
          path: target.pathname,
          method: options.method ?? (body ? "POST" : "GET"),
          agent,
          headers: body ? { "content-type": "application/json", "content-length": body.length } : {},
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode === (options.expectStatus ?? 200)));
        },
      );
      req.on("error", () => resolve(false));
      req.end(body);
    });

  const loop = async (until: number, latencies: number[] | null, counts: { errors: number }) => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const ok = await one();
      const t1 = performance.now();
      if (!ok) counts.errors++;
      latencies?.push(t1 - t0);
    }
  };
  const warmupUntil = performance.now() + (options.warmupMs ?? 500);
  await Promise.all(Array.from({ length: options.concurrency }, () => loop(warmupUntil, null, { errors: 0 })));
  const latencies: number[] = [];
  const counts = { errors: 0 };
  const start = performance.now();
  const until = start + options.durationMs;
  await Promise.all(Array.from({ length: options.concurrency }, () => loop(until, latencies, counts)));
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors: counts.errors,
    seconds,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === "number" ? format(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: Array<string | number>) => `| ${r.map((c, i) => String(c).padEnd(widths[i]!)).join(" | ")} |`;
  return [line(cells[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.slice(1).map(line)].join(
    "\n",
  );
}

function format(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (Number.isInteger(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

/** The run with the median throughput. */
export function median(runs: LoadResult[]): LoadResult {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** gateway + worker on one fresh data dir; resolves once the worker is active and has seen the target. */
export async function startForeman(targetUrl: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const gateway = await startGateway(targetUrl, extraEnv);
  const worker = await startProcess(
    process.execPath,
    [path.join(ROOT, "packages/worker/dist/main.js")],
    {
      PATH: process.env.PATH,
      FOREMAN_DATA_DIR: gateway.dataDir,
      FOREMAN_OLLAMA_URL: targetUrl,
      FOREMAN_LOG_LEVEL: "info",
      ...extraEnv,
    },
    /"target up"/,
  );
  return {
    url: gateway.url,
    dataDir: gateway.dataDir,
    gateway,
    worker,
    stop: () => Promise.all([gateway.stop(), worker.stop()]).then(() => undefined),
  };
}

export function findWrk(): string | null {
  const which = spawnSync("sh", ["-c", "command -v wrk"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() : null;
}

/**
 * The same closed-loop load from wrk (C, one thread), when installed: it needs a fraction of the CPU a Node
 * load generator does, which matters on a 2-core machine where the load generator and the server share.
 */
export function runWrk(options: WrkOptions): LoadResult {
  const run = wrkRun(options);
  try {
    return parseWrk(spawnSync(options.wrk, run.args, { encoding: "utf8" }).stdout, run.seconds);
  } finally {
    run.cleanUp();
  }
}

/**
 * runWrk without blocking this process's event loop, for a server whose output this process reads: while a
 * synchronous wrk runs nobody drains the server's stdout pipe, so a server that logs per request (POST /jobs
 * logs each new job) buffers every line in its own memory and its RSS and throughput are not its own.
 */
export async function runWrkAsync(options: WrkOptions): Promise<LoadResult> {
  const run = wrkRun(options);
  try {
    const child = spawn(options.wrk, run.args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (out += text));
    await new Promise((resolve) => child.on("close", resolve));
    return parseWrk(out, run.seconds);
  } finally {
    run.cleanUp();
  }
}

interface WrkOptions {
  wrk: string;
  url: string;
  body?: string;
  concurrency: number;
  durationMs: number;
}

function wrkRun(options: WrkOptions) {
  const dir = makeTempDir("foreman-wrk-");
  const script = path.join(dir, "request.lua");
  fs.writeFileSync(
    script,
    options.body
      ? `wrk.method = "POST"\nwrk.body = ${JSON.stringify(options.body)}\nwrk.headers["Content-Type"] = "application/json"\n`
      : "",
  );
  const seconds = Math.max(1, Math.round(options.durationMs / 1000));
  return {
    seconds,
    args: ["-t1", `-c${options.concurrency}`, `-d${seconds}s`, "--latency", "-s", script, options.url],
    cleanUp: () => removeTempDir(dir),
  };
}

function parseWrk(out: string, seconds: number): LoadResult {
  const ms = (label: string) => {
    const m = new RegExp(`^\\s+${label}\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!m) return Number.NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0);
  return {
    requests,
    errors,
    seconds,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: ms("50%"),
    p99: ms("99%"),
  };
}

/** A detailed table of one benchmark, printed with `--details` and kept in the results files. */
export interface Section {
  title: string;
  table: string;
  summary: string[];
}

/** One row of the single table `pnpm bench` prints: foreman's figure, its reference from the same run, the goal. */
export interface SummaryRow {
  measure: string;
  foreman: number | string;
  reference: string;
  goal: string;
}

export interface BenchResult {
  sections: Section[];
  rows: SummaryRow[];
}
