import { ChatOllama, OllamaEmbeddings } from "@langchain/ollama";
import { expect } from "chai";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, type Proc, stopAll } from "./harness.js";

const EMBEDDER = "nomic-embed-text:latest";
const SIM_TOKEN = "sim-target-token";
const API_TOKEN = "foreman-caller-token-0123";

describe("e2e: passthrough, embeddings bypass and the target poller", function () {
  this.timeout(30_000);
  let sim: Simulator;
  let f: Foreman;
  let gateway: Proc;
  let worker: Proc;
  const auth = { Authorization: `Bearer ${API_TOKEN}` };

  before(async () => {
    sim = await startSimulator({ token: SIM_TOKEN, loadMs: 20, tokensPerSecond: 5000, pullMs: 300 });
    f = await foreman({
      ollamaUrl: sim.url,
      env: {
        FOREMAN_OLLAMA_TOKEN: SIM_TOKEN,
        FOREMAN_EMBED_MODEL: EMBEDDER,
        FOREMAN_API_TOKEN: API_TOKEN,
        FOREMAN_POLL_MS: "150",
      },
    });
    gateway = await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("target up");
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  const viaForeman = () => new Ollama({ host: f.url, headers: auth });
  const direct = () => new Ollama({ host: sim.url, headers: { Authorization: `Bearer ${SIM_TOKEN}` } });

  it("the worker pins the embedder at start (keep_alive -1)", async () => {
    await worker.waitForLog("embedder pinned");
    const embedder = sim.loaded().find((m) => m.name === EMBEDDER);
    expect(embedder?.keepAliveMs).to.equal(null);
  });

  it("ollama client: version, list, show, embed and embeddings equal the target's own answers", async () => {
    const [a, b] = [viaForeman(), direct()];
    expect(await a.version()).to.deep.equal(await b.version());
    expect(await a.list()).to.deep.equal(await b.list());
    expect(await a.show({ model: "llama3.2" })).to.deep.equal(await b.show({ model: "llama3.2" }));
    const embedA = await a.embed({ model: EMBEDDER, input: ["one", "two"] });
    const embedB = await b.embed({ model: EMBEDDER, input: ["one", "two"] });
    expect(embedA.embeddings).to.deep.equal(embedB.embeddings);
    expect(embedA.embeddings).to.have.length(2);
    expect(embedA.embeddings[0]).to.have.length(768);
    const legacyA = await a.embeddings({ model: EMBEDDER, prompt: "hello" });
    expect(legacyA).to.deep.equal(await b.embeddings({ model: EMBEDDER, prompt: "hello" }));
  });

  it("ollama client: ps equals the target's, embedder resident", async () => {
    const [a, b] = [await viaForeman().ps(), await direct().ps()];
    expect(a).to.deep.equal(b);
    expect(a.models.map((m) => m.name)).to.include(EMBEDDER);
  });

  it("ollama client: an unknown model gets the target's 404 and message", async () => {
    const errors = await Promise.all(
      [viaForeman(), direct()].map((c) =>
        c.show({ model: "no-such-model" }).then(
          () => null,
          (e: Error & { status_code?: number }) => e,
        ),
      ),
    );
    expect(errors[0]?.status_code).to.equal(404);
    expect(errors[0]?.message).to.equal(errors[1]?.message);
  });

  it("pins the embedder on passthrough embeds that set no keep_alive, and keeps the caller's", async () => {
    sim.resetStats();
    await viaForeman().embed({ model: EMBEDDER, input: "pin me" });
    await viaForeman().embed({ model: EMBEDDER, input: "mine", keep_alive: "10m" });
    const embeds = sim.stats().recentRequests.filter((r) => r.path === "/api/embed");
    expect(embeds.map((r) => r.keepAlive)).to.deep.equal([-1, "10m"]);
  });

  it("sends the operator's token to the target and never the caller's", async () => {
    sim.resetStats();
    await viaForeman().list();
    await viaForeman().embed({ model: EMBEDDER, input: "x" });
    const seen = sim.stats().lastAuthorizations;
    expect(seen.length).to.be.greaterThan(1);
    expect(new Set(seen)).to.deep.equal(new Set([`Bearer ${SIM_TOKEN}`]));
  });

  it("refuses callers without foreman's token", async () => {
    const res = await fetch(`${f.url}/api/tags`);
    expect(res.status).to.equal(401);
  });

  it("@langchain/ollama OllamaEmbeddings gets the same vectors as direct", async () => {
    const through = new OllamaEmbeddings({ baseUrl: f.url, model: EMBEDDER, headers: auth });
    const straight = new OllamaEmbeddings({
      baseUrl: sim.url,
      model: EMBEDDER,
      headers: { Authorization: `Bearer ${SIM_TOKEN}` },
    });
    expect(await through.embedQuery("langchain")).to.deep.equal(await straight.embedQuery("langchain"));
    expect(await through.embedDocuments(["a", "b"])).to.deep.equal(await straight.embedDocuments(["a", "b"]));
    // Constructing the chat model proves the package loads; chat through foreman is in generation.test.ts.
    expect(new ChatOllama({ baseUrl: f.url, model: "llama3.2" }).model).to.equal("llama3.2");
  });

  it("openai package: embeddings and models through /v1 equal direct", async () => {
    const through = new OpenAI({ baseURL: `${f.url}/v1`, apiKey: API_TOKEN });
    const straight = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: SIM_TOKEN });
    const a = await through.embeddings.create({ model: EMBEDDER, input: ["x", "y"] });
    const b = await straight.embeddings.create({ model: EMBEDDER, input: ["x", "y"] });
    expect(a).to.deep.equal(b);
    expect(a.data).to.have.length(2);
    const modelsA = await through.models.list();
    const modelsB = await straight.models.list();
    expect(modelsA.data).to.deep.equal(modelsB.data);
  });

  it("runs 20 embeds concurrently, bypassing any queue", async () => {
    // Hold every embed at the target: all 20 must be there at once, which no serializing queue allows.
    sim.faults.hang({ pathPrefix: "/api/embed", count: 20 });
    let hung = 0;
    const allHung = new Promise<void>((resolve) => {
      const off = sim.on((e) => {
        if (e.type === "hang" && ++hung === 20) {
          off();
          resolve();
        }
      });
    });
    const controller = new AbortController();
    const held = Array.from({ length: 20 }, (_, i) =>
      fetch(`${f.url}/api/embed`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ model: EMBEDDER, input: `held ${i}` }),
        signal: controller.signal,
      }).catch(() => null),
    );
    await allHung;
    expect(sim.faults.snapshot().hungRequests).to.equal(20);
    controller.abort();
    await Promise.all(held);

    const client = viaForeman();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.embed({ model: EMBEDDER, input: `doc ${i}` })),
    );
    expect(results.every((r) => r.embeddings.length === 1)).to.equal(true);
  });

  describe("management routes", () => {
    it("are refused with 403 and a hint by default", async () => {
      for (const [method, path] of [
        ["POST", "/api/pull"],
        ["POST", "/api/push"],
        ["POST", "/api/create"],
        ["POST", "/api/copy"],
        ["DELETE", "/api/delete"],
        ["HEAD", "/api/blobs/sha256:abc"],
        ["POST", "/api/blobs/sha256:abc"],
      ] as const) {
        const res = await fetch(`${f.url}${path}`, {
          method,
          headers: auth,
          body: method === "HEAD" ? undefined : "{}",
        });
        expect(res.status, `${method} ${path}`).to.equal(403);
        if (method !== "HEAD")
          expect(((await res.json()) as { error: string }).error).to.include("FOREMAN_MANAGEMENT=true");
      }
    });

    it("pass through when enabled: /api/pull streams its progress", async () => {
      const g2 = await foreman({
        ollamaUrl: sim.url,
        env: { FOREMAN_OLLAMA_TOKEN: SIM_TOKEN, FOREMAN_MANAGEMENT: "true" },
      });
      await g2.startGateway();
      const progress: string[] = [];
      const stream = await new Ollama({ host: g2.url }).pull({ model: "smollm2:135m", stream: true });
      for await (const part of stream) progress.push(part.status);
      expect(progress[0]).to.equal("pulling manifest");
      expect(progress.at(-1)).to.equal("success");
      expect(progress.length).to.be.greaterThan(3);
      const copied = await fetch(`${g2.url}/api/copy`, {
        method: "POST",
        body: JSON.stringify({ source: "smollm2:135m", destination: "smollm2:copy" }),
      });
      expect(copied.status).to.equal(200);
      const deleted = await fetch(`${g2.url}/api/delete`, {
        method: "DELETE",
        body: JSON.stringify({ model: "smollm2:copy" }),
      });
      expect(deleted.status).to.equal(200);
    });

    it("a caller who aborts a pull closes the upstream request", async () => {
      const g3 = await foreman({
        ollamaUrl: sim.url,
        env: { FOREMAN_OLLAMA_TOKEN: SIM_TOKEN, FOREMAN_MANAGEMENT: "true" },
      });
      await g3.startGateway();
      const aborted = new Promise<string>((resolve) => {
        const off = sim.on((e) => {
          if (e.type === "abort") {
            off();
            resolve(e.path);
          }
        });
      });
      const controller = new AbortController();
      const res = await fetch(`${g3.url}/api/pull`, {
        method: "POST",
        body: JSON.stringify({ model: "tinyllama:latest" }),
        signal: controller.signal,
      });
      await res.body!.getReader().read();
      controller.abort();
      expect(await aborted).to.equal("/api/pull");
    });
  });

  describe("target down", () => {
    it("answers 502 quickly while the target refuses, keeps both processes alive, and recovers", async () => {
      await sim.faults.refuseConnections(1500);
      const started = Date.now();
      const res = await fetch(`${f.url}/api/tags`, { headers: auth });
      expect(res.status).to.equal(502);
      expect(((await res.json()) as { error: string }).error).to.match(/^ollama target unreachable: ECONNREFUSED/);
      expect(Date.now() - started).to.be.lessThan(1000);
      const embed = await fetch(`${f.url}/api/embed`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ model: EMBEDDER, input: "x" }),
      });
      expect(embed.status).to.equal(502);
      await worker.waitForLog("target down");
      const ready = (await (await fetch(`${f.url}/readyz`)).json()) as { target: { reachable: boolean } };
      expect(ready.target.reachable).to.equal(false);

      await sim.whenListening();
      const ups = () => worker.logs().filter((l) => l.message === "target up").length;
      await worker.waitForLine(() => ups() >= 2, 5000);
      const back = await viaForeman().list();
      expect(back.models.length).to.be.greaterThan(0);
      expect(gateway.child.exitCode).to.equal(null);
      expect(worker.child.exitCode).to.equal(null);
    });

    it("re-pins the embedder when it goes missing from /api/ps", async () => {
      const before = worker.logs().filter((l) => l.message === "embedder pinned").length;
      await direct().embed({ model: EMBEDDER, input: "", keep_alive: 0 });
      await worker.waitForLine(() => worker.logs().filter((l) => l.message === "embedder pinned").length > before);
      expect(sim.loaded().find((m) => m.name === EMBEDDER)?.keepAliveMs).to.equal(null);
    });
  });
});
