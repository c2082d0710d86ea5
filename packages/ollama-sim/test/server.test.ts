import { request as httpRequest } from "node:http";
import { expect } from "chai";
import { ManualClock } from "../src/index.js";
import { fetchError, freshGet, nextEvent, parseNdjson, postJson, simulators } from "./helpers.js";

const messages = [{ role: "user", content: "Hello" }];

/** Reads a streamed body line by line until `lines` lines have arrived. */
async function readLines(res: Response, lines: number): Promise<string[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  while (buffer.split("\n").length - 1 < lines) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return buffer.split("\n").slice(0, lines);
}

describe("server", () => {
  const start = simulators();

  describe("routing", () => {
    it("answers GET and HEAD / with Ollama is running", async () => {
      const sim = await start();
      const get = await fetch(sim.url);
      expect(get.status).to.equal(200);
      expect(get.headers.get("content-type")).to.equal("text/plain; charset=utf-8");
      expect(await get.text()).to.equal("Ollama is running");
      const head = await fetch(sim.url, { method: "HEAD" });
      expect(head.status).to.equal(200);
      expect(head.headers.get("content-length")).to.equal("17");
      expect(await head.text()).to.equal("");
    });

    it("answers unknown routes 404 and wrong methods 405 in plain text, like gin", async () => {
      const sim = await start();
      const missing = await fetch(`${sim.url}/api/nothing`);
      expect(missing.status).to.equal(404);
      expect(missing.headers.get("content-type")).to.equal("text/plain");
      expect(await missing.text()).to.equal("404 page not found");
      const wrong = await fetch(`${sim.url}/api/chat`);
      expect(wrong.status).to.equal(405);
      expect(await wrong.text()).to.equal("405 method not allowed");
    });
  });

  describe("bearer token", () => {
    it("guards /api and /v1 but not / or the control routes", async () => {
      const sim = await start({ token: "s3cret" });
      const without = await fetch(`${sim.url}/api/tags`);
      expect(without.status).to.equal(401);
      expect(await without.json()).to.deep.equal({ error: "unauthorized" });
      expect((await fetch(`${sim.url}/v1/models`, { headers: { Authorization: "Bearer wrong" } })).status).to.equal(
        401,
      );
      const withToken = await fetch(`${sim.url}/api/tags`, { headers: { Authorization: "Bearer s3cret" } });
      expect(withToken.status).to.equal(200);
      expect((await fetch(sim.url)).status).to.equal(200);
      expect((await fetch(`${sim.url}/_sim/stats`)).status).to.equal(200);
      expect(sim.stats().lastAuthorizations).to.deep.equal([null, "Bearer wrong", "Bearer s3cret", null]);
    });
  });

  describe("residency over HTTP", () => {
    it("pins with keep_alive -1, expires duration strings, unloads with 0", async () => {
      const clock = new ManualClock();
      const sim = await start({ clock, maxLoadedModels: 3 });
      await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: "x", keep_alive: -1 });
      await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, keep_alive: "300ms", stream: false });
      await postJson(`${sim.url}/api/generate`, { model: "gemma3:4b", prompt: "x", keep_alive: 0, stream: false });
      expect(sim.loaded().map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest", "llama3.2:latest"]);
      clock.advance(299);
      expect(sim.loaded()).to.have.length(2);
      clock.advance(1);
      expect(sim.loaded().map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest"]);
      clock.advance(100 * 365 * 86_400_000);
      expect(sim.loaded().map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest"]);
      expect(sim.stats().unloads.byModel).to.deep.equal({ "gemma3:4b": 1, "llama3.2:latest": 1 });
    });

    it("evicts at the loaded-model limit and counts loads, unloads and evictions", async () => {
      const sim = await start({ maxLoadedModels: 2 });
      await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: "x", keep_alive: -1 });
      await postJson(`${sim.url}/api/generate`, { model: "llama3.2", keep_alive: "10m" });
      await postJson(`${sim.url}/api/generate`, { model: "qwen3:8b", keep_alive: "10m" });
      await postJson(`${sim.url}/api/generate`, { model: "gemma3:4b" });
      const stats = sim.stats();
      expect(stats.loads.total).to.equal(4);
      expect(stats.evictions.byModel).to.deep.equal({ "llama3.2:latest": 1, "qwen3:8b": 1 });
      expect(stats.unloads.total).to.equal(2);
      expect(sim.loaded().map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest", "gemma3:4b"]);
    });

    it("serves concurrent requests for one model with a single load", async () => {
      const sim = await start({ loadMs: 40 });
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, stream: false }),
        ),
      );
      expect(answers.every((r) => r.status === 200)).to.equal(true);
      const bodies = (await Promise.all(answers.map((r) => r.json()))) as Array<{ load_duration: number }>;
      expect(sim.stats().loads.total).to.equal(1);
      // The request that started the load waited all of its 40 ms (a timer never fires early; a few ms are
      // left for the clocks' rounding); the others waited what was left when they arrived, which on a loaded
      // machine may be nothing.
      const waits = bodies.map((b) => b.load_duration);
      expect(Math.max(...waits)).to.be.at.least(35_000_000);
      expect(waits.every((ns) => Number.isInteger(ns) && ns > 0)).to.equal(true);
    });
  });

  describe("faults", () => {
    it("refuses connections, drops open keep-alive sockets, then listens again on the same port", async () => {
      const sim = await start();
      const agentReq = await fetch(`${sim.url}/api/version`); // leaves a keep-alive socket open
      expect(agentReq.status).to.equal(200);
      const streaming = await postJson(`${sim.url}/api/chat`, {
        model: "llama3.2",
        messages,
        options: { num_predict: 1000 },
      });
      await sim.faults.refuseConnections(150);
      expect(await freshGet(`${sim.url}/api/version`)).to.equal("ECONNREFUSED");
      const cut = await fetchError(streaming.text());
      expect(cut).to.be.instanceOf(Error);
      await sim.whenListening();
      expect(await freshGet(`${sim.url}/api/version`)).to.equal(200);
      expect(sim.stats().faults.refusals).to.equal(1);
      expect(sim.stats().aborted.total).to.equal(0);
    });

    it("refuses over HTTP after answering the control request", async () => {
      const sim = await start();
      const refusing = nextEvent(sim, (e) => e.type === "refusing");
      const res = await postJson(`${sim.url}/_sim/faults`, { refuse: { ms: 100 } });
      expect(res.status).to.equal(200);
      expect(await res.json()).to.have.property("refusingForMs", 100);
      await refusing;
      expect(sim.faults.snapshot().refusingUntil).to.be.a("string");
      expect(await freshGet(`${sim.url}/`)).to.equal("ECONNREFUSED");
      await sim.whenListening();
      expect(await freshGet(`${sim.url}/`)).to.equal(200);
    });

    it("dies mid-stream: the client sees K chunks and no done chunk", async () => {
      const sim = await start();
      sim.faults.dieMidStream({ afterChunks: 3, count: 1 });
      const res = await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, options: { num_predict: 50 } });
      expect(res.status).to.equal(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = "";
      let failed = false;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      } catch {
        failed = true;
      }
      expect(failed).to.equal(true);
      const lines = parseNdjson(text);
      expect(lines).to.have.length(3);
      expect(lines.every((l) => l.done === false)).to.equal(true);
      const next = await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, options: { num_predict: 5 } });
      expect(parseNdjson(await next.text()).at(-1)).to.include({ done: true });
      expect(sim.stats().faults.diedMidStream).to.equal(1);
      expect(sim.stats().aborted.total).to.equal(0);
    });

    it("hangs matching requests until the client gives up, and counts the abort", async () => {
      const sim = await start();
      sim.faults.hang({ count: 1, pathPrefix: "/api/chat" });
      const abort = new AbortController();
      const hung = nextEvent(sim, (e) => e.type === "hang");
      const pending = postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages }, { signal: abort.signal });
      await hung;
      expect((await fetch(`${sim.url}/api/tags`)).status).to.equal(200); // other paths unaffected
      expect(sim.stats().inFlight).to.equal(1);
      expect(sim.faults.snapshot().hungRequests).to.equal(1);
      const aborted = nextEvent(sim, (e) => e.type === "abort");
      abort.abort();
      expect((await fetchError(pending)).name).to.equal("AbortError");
      await aborted;
      expect(sim.stats().aborted.byPath).to.deep.equal({ "/api/chat": 1 });
      const after = await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, stream: false });
      expect(after.status).to.equal(200);
    });

    it("drops hung requests on close()", async () => {
      const sim = await start();
      sim.faults.hang();
      const hung = nextEvent(sim, (e) => e.type === "hang");
      const pending = fetch(`${sim.url}/api/tags`);
      await hung;
      await sim.close();
      expect(await fetchError(pending)).to.be.instanceOf(Error);
    });

    it("holds the first token back with slowFirstToken", async () => {
      const sim = await start();
      sim.faults.slowFirstToken({ ms: 150, count: 1 });
      const began = performance.now();
      const res = await postJson(`${sim.url}/api/generate`, {
        model: "llama3.2",
        prompt: "x",
        options: { num_predict: 2 },
      });
      await readLines(res, 1);
      expect(performance.now() - began).to.be.at.least(140);
      expect(sim.stats().faults.slowedFirstToken).to.equal(1);
    });
  });

  describe("request accounting", () => {
    it("counts a client abort of a stream and frees the model", async () => {
      const sim = await start({ tokensPerSecond: 200 });
      const abort = new AbortController();
      const res = await postJson(
        `${sim.url}/api/chat`,
        { model: "llama3.2", messages, options: { num_predict: 1000 }, keep_alive: "1m" },
        { signal: abort.signal },
      );
      await readLines(res, 2);
      expect(sim.loaded()[0]?.activeRequests).to.equal(1);
      const ended = nextEvent(sim, (e) => e.type === "request-end");
      abort.abort();
      expect(await ended).to.include({ aborted: true, path: "/api/chat" });
      const stats = sim.stats();
      expect(stats.aborted).to.deep.equal({ total: 1, byPath: { "/api/chat": 1 } });
      expect(stats.inFlight).to.equal(0);
      expect(stats.recentRequests.at(-1)).to.include({ path: "/api/chat", aborted: true, finished: false });
      expect(sim.loaded()[0]?.activeRequests).to.equal(0);
    });

    it("logs method, path, model, keep_alive and a subset of headers", async () => {
      const sim = await start({ logSize: 2 });
      await fetch(`${sim.url}/api/tags`);
      await postJson(
        `${sim.url}/api/generate`,
        { model: "llama3.2", keep_alive: "5m" },
        { headers: { Authorization: "Bearer abc", "X-Foreman-Job-Id": "01J", Cookie: "no" } },
      );
      await fetch(`${sim.url}/api/version`);
      const log = sim.stats().recentRequests;
      expect(log).to.have.length(2);
      expect(log[0]).to.deep.include({
        method: "POST",
        path: "/api/generate",
        route: "POST /api/generate",
        model: "llama3.2",
        keepAlive: "5m",
        status: 200,
        finished: true,
        aborted: false,
      });
      expect(log[0]?.headers).to.include({ authorization: "Bearer abc", "x-foreman-job-id": "01J" });
      expect(log[0]?.headers).to.not.have.property("cookie");
      expect(sim.stats().requests.byRoute).to.deep.equal({
        "GET /api/tags": 1,
        "POST /api/generate": 1,
        "GET /api/version": 1,
      });
    });

    it("keeps connections alive between requests", async () => {
      const sim = await start();
      const remotePorts = new Set<number>();
      const agent = new (await import("node:http")).Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = httpRequest(`${sim.url}/api/version`, { agent }, (res) => {
            remotePorts.add(res.socket.localPort as number);
            res.resume();
            res.on("end", resolve);
          });
          req.on("error", reject);
          req.end();
        });
      }
      agent.destroy();
      expect(remotePorts.size).to.equal(1);
    });
  });

  describe("throughput", () => {
    it("streams thousands of chunks per second from a fast model", async () => {
      const sim = await start({ tokensPerSecond: 100_000 });
      await postJson(`${sim.url}/api/generate`, { model: "llama3.2" }); // load first
      const began = performance.now();
      const res = await postJson(`${sim.url}/api/generate`, {
        model: "llama3.2",
        prompt: "x",
        options: { num_predict: 5000 },
      });
      const lines = parseNdjson(await res.text());
      const seconds = (performance.now() - began) / 1000;
      expect(lines).to.have.length(5001);
      expect(lines.at(-1)).to.include({ eval_count: 5000, eval_duration: 50_000_000 });
      expect(5000 / seconds).to.be.greaterThan(2000);
    });
  });
});
