import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { ENTRY, type Foreman, foreman, Proc, stopAll, tempDataDir } from "./harness.js";

const job = (prompt: string) => ({ model: "llama3.2", prompt });

async function postJob(f: Foreman, body: unknown) {
  const res = await fetch(`${f.url}/jobs`, { method: "POST", body: JSON.stringify(body) });
  return { res, body: (await res.json()) as { id?: string; error?: string } };
}

/** A raw loopback connection that collects what the server sends and says when it closes. */
function rawConnection(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  let received = "";
  socket.on("data", (d) => (received += d));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  const connected = new Promise<void>((resolve) => socket.on("connect", () => resolve()));
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (received.includes(text)) {
          socket.off("data", check);
          resolve();
        }
      };
      socket.on("data", check);
      socket.once("close", () => (received.includes(text) ? resolve() : reject(new Error(`closed before ${text}`))));
      check();
    });
  return { socket, closed, connected, waitFor, received: () => received };
}

/** Every file and directory under `dir`, with its permission bits. */
function modes(dir: string): Array<{ file: string; mode: number }> {
  const out: Array<{ file: string; mode: number }> = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    out.push({ file: path.relative(dir, file), mode: fs.statSync(file).mode & 0o777 });
  }
  return out;
}

describe("e2e: bounds on the queue, connections, long polls and streams", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("refuses new jobs with 503, Retry-After and an Ollama error once FOREMAN_MAX_QUEUED_JOBS are queued, on every route", async () => {
    // No worker: what is accepted stays queued.
    const f = await foreman({ env: { FOREMAN_MAX_QUEUED_JOBS: "3" } });
    await f.startGateway();
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const { res, body } = await postJob(f, job(`job ${n}`));
      expect(res.status).to.equal(202);
      ids.push(body.id!);
    }
    const refused = await postJob(f, job("one too many"));
    expect(refused.res.status).to.equal(503);
    expect(refused.res.headers.get("retry-after")).to.equal("30");
    expect(refused.body.error).to.match(/^queue is full: 3 jobs queued \(FOREMAN_MAX_QUEUED_JOBS=3\)/);
    for (const [route, body] of [
      ["/api/generate", { model: "llama3.2", prompt: "hi" }],
      ["/api/chat", { model: "llama3.2", messages: [{ role: "user", content: "hi" }], stream: false }],
      ["/v1/chat/completions", { model: "llama3.2", messages: [{ role: "user", content: "hi" }], stream: true }],
      ["/v1/completions", { model: "llama3.2", prompt: "hi" }],
    ] as const) {
      const res = await fetch(`${f.url}${route}`, { method: "POST", body: JSON.stringify(body) });
      expect(res.status, route).to.equal(503);
      expect(res.headers.get("retry-after"), route).to.equal("30");
      expect(((await res.json()) as { error: string }).error, route).to.match(/^queue is full/);
    }
    // A job that leaves the queue makes room at once.
    expect((await fetch(`${f.url}/jobs/${ids[0]}/cancel`, { method: "POST" })).status).to.equal(200);
    expect((await postJob(f, job("room again"))).res.status).to.equal(202);
    expect((await postJob(f, job("full again"))).res.status).to.equal(503);
  });

  it("refuses new jobs once the queued requests would exceed FOREMAN_MAX_QUEUED_BYTES", async () => {
    const f = await foreman({ env: { FOREMAN_MAX_QUEUED_BYTES: "4kb" } });
    await f.startGateway();
    const big = "x".repeat(1500);
    expect((await postJob(f, job(big))).res.status).to.equal(202);
    expect((await postJob(f, job(big))).res.status).to.equal(202);
    const refused = await postJob(f, job(big));
    expect(refused.res.status).to.equal(503);
    expect(refused.res.headers.get("retry-after")).to.equal("30");
    expect(refused.body.error).to.match(
      /^queue is full: queued requests hold \d+ bytes .*FOREMAN_MAX_QUEUED_BYTES=4096/,
    );
    // A small job still fits.
    expect((await postJob(f, job("small"))).res.status).to.equal(202);
  });

  it("answers 408 and disconnects a caller whose headers or body do not arrive in time; answers are not bounded", async () => {
    const sim = await startSimulator({ loadMs: 5, tokensPerSecond: 40 });
    try {
      const f = await foreman({
        ollamaUrl: sim.url,
        env: { FOREMAN_HEADERS_TIMEOUT_MS: "300", FOREMAN_REQUEST_TIMEOUT_MS: "600" },
      });
      await f.startGateway();
      // Slowloris: headers that never end.
      const slowHeaders = rawConnection(f.port);
      await slowHeaders.connected;
      slowHeaders.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n");
      await slowHeaders.closed;
      expect(slowHeaders.received()).to.match(/^HTTP\/1\.1 408/);
      // A connection that sends nothing at all.
      const silent = rawConnection(f.port);
      await silent.closed;
      expect(silent.received()).to.match(/^HTTP\/1\.1 408/);
      // A body that trickles.
      const slowBody = rawConnection(f.port);
      await slowBody.connected;
      slowBody.socket.write("POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{");
      await slowBody.closed;
      expect(slowBody.received()).to.match(/^HTTP\/1\.1 408/);

      // A streamed answer that takes longer than the request timeout (40 tokens at 40/s) runs to its end.
      f.startWorker();
      const started = Date.now();
      const res = await fetch(`${f.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", prompt: "long", options: { num_predict: 40 } }),
      });
      const lines = (await res.text()).trim().split("\n");
      expect(Date.now() - started).to.be.greaterThan(600);
      expect(JSON.parse(lines.at(-1)!)).to.include({ done: true });
      // And so does a long poll.
      const { body } = await postJob(f, job("poll me"));
      const polled = await fetch(`${f.url}/jobs/${body.id}?wait=20`);
      expect(polled.status).to.equal(200);
      expect(((await polled.json()) as { state: string }).state).to.equal("done");
    } finally {
      await stopAll();
      await sim.close();
    }
  });

  it("closes connections beyond FOREMAN_MAX_CONNECTIONS at once, and accepts again when one ends", async () => {
    const f = await foreman({ env: { FOREMAN_MAX_CONNECTIONS: "3" } });
    await f.startGateway();
    // Three keep-alive connections, each answered once and then held open idle.
    const holders = [1, 2, 3].map(() => rawConnection(f.port));
    for (const h of holders) {
      await h.connected;
      h.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      await h.waitFor('{"status":"ok"}');
    }
    const fourth = rawConnection(f.port);
    await fourth.closed;
    expect(fourth.received()).to.equal("");
    const refused = await fetch(`${f.url}/healthz`).then(
      () => "answered",
      () => "closed",
    );
    expect(refused).to.equal("closed");
    holders[0]!.socket.destroy();
    await holders[0]!.closed;
    // The server counts the closed connection as soon as it reads the FIN; a probe may race it, so ask again.
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      status = await fetch(`${f.url}/healthz`).then(
        (r) => r.status,
        () => 0,
      );
    }
    expect(status).to.equal(200);
    expect(f.gateway!.logs().some((l) => l.message?.startsWith("connection limit reached"))).to.equal(true);
    for (const h of holders) h.socket.destroy();
  });

  it("refuses long polls and stream followers beyond their limits with 503 and Retry-After", async () => {
    // A job that runs for minutes: its followers get their headers at once, its long polls never end.
    const sim = await startSimulator({ loadMs: 5, tokensPerSecond: 5 });
    const open: AbortController[] = [];
    const follow = async (url: string) => {
      const controller = new AbortController();
      open.push(controller);
      return { res: await fetch(url, { signal: controller.signal }), controller };
    };
    try {
      const f = await foreman({
        ollamaUrl: sim.url,
        env: { FOREMAN_MAX_LONG_POLLS: "2", FOREMAN_MAX_STREAM_FOLLOWERS: "2" },
      });
      await f.startGateway();
      const worker = f.startWorker();
      const { body } = await postJob(f, { ...job("long"), options: { num_predict: 5000 } });
      const id = body.id!;
      await worker.waitForLine((l) => l.includes(id) && l.includes('"job working"'));

      const streams = [await follow(`${f.url}/jobs/${id}/stream`), await follow(`${f.url}/jobs/${id}/stream`)];
      for (const s of streams) expect(s.res.status).to.equal(200);
      const thirdStream = await fetch(`${f.url}/jobs/${id}/stream`);
      expect(thirdStream.status).to.equal(503);
      expect(thirdStream.headers.get("retry-after")).to.equal("5");
      expect(((await thirdStream.json()) as { error: string }).error).to.match(
        /too many concurrent stream followers \(FOREMAN_MAX_STREAM_FOLLOWERS=2\)/,
      );

      const polls = [1, 2].map(() => follow(`${f.url}/jobs/${id}?wait=60`));
      // The two polls may still be on their way in; a probe with wait=0 answers at once when admitted.
      let probe: Response | undefined;
      for (let attempt = 0; attempt < 100 && probe?.status !== 503; attempt++) {
        probe = await fetch(`${f.url}/jobs/${id}?wait=0`);
      }
      expect(probe?.status).to.equal(503);
      expect(probe?.headers.get("retry-after")).to.equal("5");
      expect(((await probe!.json()) as { error: string }).error).to.match(
        /too many concurrent long polls \(FOREMAN_MAX_LONG_POLLS=2\)/,
      );
      // A plain read is no long poll.
      expect((await fetch(`${f.url}/jobs/${id}`)).status).to.equal(200);

      // A caller that goes away gives its slot back.
      streams[0]!.controller.abort();
      let again = 0;
      for (let attempt = 0; attempt < 100 && again !== 200; attempt++) {
        again = (await follow(`${f.url}/jobs/${id}/stream`)).res.status;
      }
      expect(again).to.equal(200);
      for (const c of open) c.abort();
      await Promise.allSettled(polls);
    } finally {
      for (const c of open) c.abort();
      await stopAll();
      await sim.close();
    }
  });

  it("/readyz says since when the target is down and how many jobs wait, and nothing about pid, host or job", async () => {
    const f = await foreman({ env: { FOREMAN_POLL_MS: "100" } });
    await f.startGateway();
    const worker = f.startWorker();
    await worker.waitForLog("target down");
    // An unreachable target leaves foreman ready: jobs still queue.
    expect((await fetch(`${f.url}/readyz`)).status).to.equal(200);
    // Without a worker claiming (and handing back) jobs, the count below is exact.
    await worker.kill("SIGKILL");
    for (const n of [1, 2]) expect((await postJob(f, job(`waiting ${n}`))).res.status).to.equal(202);
    const res = await fetch(`${f.url}/readyz`);
    const body = (await res.json()) as {
      target: { reachable: boolean; down_since: string };
      queue: { queued: number };
      worker: Record<string, unknown>;
    };
    expect(body.target.reachable).to.equal(false);
    expect(Date.parse(body.target.down_since)).to.be.within(Date.now() - 30_000, Date.now());
    expect(body.queue.queued).to.equal(2);
    expect(body.worker).to.have.keys("fresh", "heartbeat_age_ms");
    const text = JSON.stringify(body);
    expect(text).to.not.include(String(worker.child.pid)).and.not.include("127.0.0.1:9");
  });

  it("stops both processes with one line when the database file is deleted, and /readyz fails meanwhile", async () => {
    const f = await foreman();
    // The gateway only looks when asked (readiness), the worker every 100 ms.
    await f.startGateway({ FOREMAN_DB_CHECK_MS: "600000" });
    const worker = f.startWorker({ FOREMAN_DB_CHECK_MS: "100" });
    await worker.waitForLog("active worker");
    expect((await fetch(`${f.url}/readyz`)).status).to.equal(200);

    fs.rmSync(path.join(f.dataDir, "foreman.db"));
    const workerExit = await worker.exited;
    expect(workerExit.code).to.equal(1);
    const ready = await fetch(`${f.url}/readyz`);
    expect(ready.status).to.equal(503);
    expect(((await ready.json()) as { database: { file: string } }).database.file).to.equal("deleted");
    const gatewayExit = await f.gateway!.exited;
    expect(gatewayExit.code).to.equal(1);
    for (const proc of [worker, f.gateway!]) {
      const line = proc.logs().find((l) => l.level === "error");
      expect(line?.message, proc.name).to.match(
        /^database file .*foreman\.db was deleted while foreman was running; stopping/,
      );
    }
  });

  it("creates every file under the data directory readable by its owner only", async () => {
    const sim: Simulator = await startSimulator({ loadMs: 5, tokensPerSecond: 5000 });
    try {
      const f = await foreman({ ollamaUrl: sim.url });
      await f.startGateway();
      const worker = f.startWorker();
      await worker.waitForLog("active worker");
      const { body } = await postJob(f, job("artifacts"));
      const done = await fetch(`${f.url}/jobs/${body.id}?wait=20`);
      expect(((await done.json()) as { state: string }).state).to.equal("done");
      const sync = await fetch(`${f.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", prompt: "relay", stream: false }),
      });
      expect(sync.status).to.equal(200);
      const found = modes(f.dataDir);
      expect(found.map((m) => m.file)).to.include.members(["foreman.db", "wake", "relays"]);
      expect(found.some((m) => m.file.startsWith("artifacts/"))).to.equal(true);
      for (const { file, mode } of found) expect(mode & 0o077, `${file} ${mode.toString(8)}`).to.equal(0);
    } finally {
      await stopAll();
      await sim.close();
    }
  });

  it("refuses a target URL with credentials at start, in both processes, without printing them", async () => {
    for (const entry of [ENTRY.gateway, ENTRY.worker]) {
      const proc = new Proc(path.basename(path.dirname(path.dirname(entry))), entry, {
        PATH: process.env.PATH,
        FOREMAN_DATA_DIR: tempDataDir(),
        FOREMAN_OLLAMA_URL: "http://ops:hunter2@127.0.0.1:9",
      });
      const exit = await proc.exited;
      expect(exit.code).to.equal(2);
      const output = proc.lines.join("\n");
      expect(output).to.include("FOREMAN_OLLAMA_URL must not contain a user name or password");
      expect(output).to.not.include("hunter2");
    }
  });
});
