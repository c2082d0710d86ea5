import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { openDb } from "./db.js";
import { foreman, stopAll } from "./harness.js";

/** A target that answers like Ollama except for what `chat` does with a chat request. */
async function startBrokenTarget(
  chat: (res: http.ServerResponse) => void = (res) => {
    // A stream that carries a line that is not JSON.
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write('{"model":"m","message":{"role":"assistant","content":"ok"},"done":false}\n');
    res.end("<html>proxy error</html>\n");
  },
) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url === "/api/version") return void res.end('{"version":"0.0.0"}');
      if (req.url === "/api/ps") return void res.end('{"models":[]}');
      if (req.url === "/api/show") return void res.end("{}");
      chat(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

describe("e2e: the worker survives what targets do wrong", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("a chunk that is not JSON fails the job with a final error line; the worker keeps running", async () => {
    const target = await startBrokenTarget();
    try {
      const f = await foreman({ ollamaUrl: target.url });
      await f.startGateway();
      const worker = f.startWorker();
      await worker.waitForLog("active worker");
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${f.url}/api/chat`, {
          method: "POST",
          body: JSON.stringify({ model: "m", messages: [] }),
        });
        const lines = (await res.text())
          .trimEnd()
          .split("\n")
          .map((l) => JSON.parse(l));
        expect(lines.at(-1))
          .to.have.property("error")
          .that.matches(/target connection lost mid-generation/);
      }
      expect(worker.child.exitCode).to.equal(null);
    } finally {
      target.close();
    }
  });

  it("an HTML page answered with 200 fails the job with a 502 before the caller sees a success", async () => {
    const target = await startBrokenTarget((res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html><body>Sign in to the hotel Wi-Fi</body></html>");
    });
    try {
      const f = await foreman({ ollamaUrl: target.url });
      await f.startGateway();
      await f.startWorker().waitForLog("active worker");
      const res = await fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [] }),
      });
      expect(res.status).to.equal(502);
      expect(((await res.json()) as { error: string }).error).to.match(/content type text\/html, not an Ollama answer/);
      const db = openDb(f.dataDir);
      expect(db.job(res.headers.get("x-foreman-job-id")!)?.state).to.equal("failed");
      db.close();
    } finally {
      target.close();
    }
  });

  it("a line with no end from the target is cut at the line limit; the heartbeat and the next job go on", async () => {
    const block = "x".repeat(64 * 1024);
    let served = 0;
    const target = await startBrokenTarget((res) => {
      served++;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      if (served > 1) {
        res.end('{"model":"m","message":{"role":"assistant","content":"fine"},"done":true}\n');
        return;
      }
      // Writes until the worker gives up on the line (a socket it closes ends the loop).
      const pump = () => {
        while (!res.destroyed && res.write(block));
        if (!res.destroyed) res.once("drain", pump);
      };
      res.on("close", () => res.removeAllListeners("drain"));
      pump();
    });
    try {
      const f = await foreman({ ollamaUrl: target.url, env: { FOREMAN_TARGET_LINE_LIMIT: "1mb" } });
      await f.startGateway();
      const worker = f.startWorker();
      await worker.waitForLog("active worker");
      const first = await fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [] }),
      });
      const lines = (await first.text()).trimEnd().split("\n");
      expect(JSON.parse(lines.at(-1)!).error).to.match(/longer than 1048576 characters/);
      const second = await fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [], stream: false }),
      });
      expect(((await second.json()) as { message: { content: string } }).message.content).to.equal("fine");
      expect(worker.child.exitCode).to.equal(null);
    } finally {
      target.close();
    }
  });

  describe("with the simulator", () => {
    let sim: Simulator;
    beforeEach(async () => {
      sim = await startSimulator({ loadMs: 5, tokensPerSecond: 5000 });
    });
    afterEach(() => sim.close());

    it("a target that accepts a generation and never answers is abandoned after the idle timeout, and the job retried", async () => {
      sim.faults.hang({ count: 1, pathPrefix: "/api/chat" });
      const f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_TARGET_IDLE_TIMEOUT_MS: "1000" } });
      await f.startGateway();
      await f.startWorker().waitForLog("active worker");
      const res = await fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "hang" }], stream: false }),
      });
      expect(res.status).to.equal(200);
      expect(((await res.json()) as { done: boolean }).done).to.equal(true);
      const id = res.headers.get("x-foreman-job-id")!;
      expect(await f.endedJob(id)).to.include({ state: "done", attempts: 1 });
      const db = openDb(f.dataDir);
      expect(db.history(id).map((h) => h.to_state)).to.deep.equal([
        "queued",
        "loading",
        "queued",
        "loading",
        "working",
        "done",
      ]);
      db.close();
    });

    it("a restarted worker unloads the model the target still holds before switching, never the embedder", async () => {
      const embedder = "nomic-embed-text:latest";
      const f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_EMBED_MODEL: embedder } });
      await f.startGateway();
      const first = f.startWorker({}, "worker-1");
      await first.waitForLog("embedder pinned");
      const chat = (model: string) =>
        fetch(`${f.url}/api/chat`, { method: "POST", body: JSON.stringify({ model, messages: [], stream: false }) });
      expect((await chat("llama3.2")).status).to.equal(200);
      expect((await first.kill("SIGTERM")).code).to.equal(0);
      const unloads: string[] = [];
      const off = sim.on((e) => {
        if (e.type === "unload") unloads.push(`${e.model}:${e.reason}`);
      });
      await f.startWorker({}, "worker-2").waitForLog("active worker");
      expect((await chat("qwen3:8b")).status).to.equal(200);
      off();
      expect(unloads).to.include("llama3.2:latest:requested");
      expect(unloads.some((u) => u.startsWith(embedder))).to.equal(false);
    });
  });
});

describe("e2e: a gateway stopped during a long synchronous stream", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("drains for its grace period, then ends the stream with an error line and cancels the job", async () => {
    const sim = await startSimulator({ loadMs: 5, tokensPerSecond: 20 });
    try {
      const f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_SHUTDOWN_GRACE_MS: "500" } });
      const gateway = await f.startGateway();
      const worker = f.startWorker();
      await worker.waitForLog("active worker");
      const res = await fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({
          model: "llama3.2",
          messages: [{ role: "user", content: "long" }],
          options: { num_predict: 2000 },
        }),
      });
      const id = res.headers.get("x-foreman-job-id")!;
      const reader = res.body!.getReader();
      await reader.read();
      const exited = gateway.kill("SIGTERM");
      let text = "";
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      const last = JSON.parse(text.trimEnd().split("\n").at(-1)!);
      expect(last).to.deep.equal({ error: "the gateway is shutting down; job canceled" });
      expect((await exited).code).to.equal(0);
      await worker.waitForLine((l) => l.includes(id) && l.includes("canceled while running"));
      const db = openDb(f.dataDir);
      expect(db.job(id)?.state).to.equal("canceled");
      db.close();
    } finally {
      await sim.close();
    }
  });
});
