import { expect } from "chai";
import { DEFAULT_MODELS } from "../../src/index.js";
import { postJson, simulators } from "../helpers.js";

function norm(vector: number[]): number {
  return Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
}

describe("routes/embed", () => {
  const start = simulators();

  it("embeds a string or an array into unit vectors of the model's size", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: ["a", "b"] });
    expect(res.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    const body = (await res.json()) as Record<string, unknown> & { embeddings: number[][] };
    expect(body).to.have.keys("model", "embeddings", "total_duration", "load_duration", "prompt_eval_count");
    expect(body.model).to.equal("nomic-embed-text");
    expect(body.embeddings).to.have.length(2);
    expect(body.embeddings[0]).to.have.length(768);
    expect(norm(body.embeddings[0] as number[])).to.be.closeTo(1, 1e-5);
    const single = (await (
      await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: "a" })
    ).json()) as {
      embeddings: number[][];
    };
    expect(single.embeddings).to.deep.equal([body.embeddings[0]]);
  });

  it("cuts to `dimensions` and normalizes again", async () => {
    const sim = await start();
    const body = (await (
      await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: "a", dimensions: 64 })
    ).json()) as { embeddings: number[][] };
    expect(body.embeddings[0]).to.have.length(64);
    expect(norm(body.embeddings[0] as number[])).to.be.closeTo(1, 1e-5);
  });

  it("loads the embedder with an empty input and answers without metrics", async () => {
    const sim = await start();
    const body = await (await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: [] })).json();
    expect(body).to.deep.equal({ model: "nomic-embed-text", embeddings: [] });
    expect(sim.loaded().map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest"]);
  });

  it("refuses over-long input when truncate is false", async () => {
    const sim = await start({ models: [{ name: "tiny-embed", embeddingSize: 8, contextLength: 4 }] });
    const res = await postJson(`${sim.url}/api/embed`, {
      model: "tiny-embed",
      input: "x".repeat(100),
      truncate: false,
    });
    expect(res.status).to.equal(400);
    expect(await res.json()).to.deep.equal({ error: "the input length exceeds the context length" });
    const truncated = await postJson(`${sim.url}/api/embed`, { model: "tiny-embed", input: "x".repeat(100) });
    expect(truncated.status).to.equal(200);
  });

  it("fails on a chat model after loading it, as the runner does", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/embed`, { model: "llama3.2", input: "a" });
    expect(res.status).to.equal(500);
    expect(await res.json()).to.deep.equal({ error: "this model does not support embeddings" });
    expect(sim.stats().loads.byModel).to.deep.equal({ "llama3.2:latest": 1 });
  });

  it("answers Ollama's errors for bad requests", async () => {
    const sim = await start();
    const check = async (path: string, body: unknown, status: number, error: string) => {
      const res = await postJson(`${sim.url}${path}`, body);
      expect(res.status, JSON.stringify(body)).to.equal(status);
      expect(await res.json()).to.deep.equal({ error });
    };
    await check("/api/embed", { model: "nope", input: "a" }, 404, "model 'nope' not found");
    await check("/api/embed", { input: "a" }, 404, "model '' not found");
    await check("/api/embed", { model: "nomic-embed-text", input: [1] }, 400, "invalid input type");
    await check("/api/embed", { model: "nomic-embed-text", input: 5 }, 400, "invalid input type");
    await check("/api/embeddings", { model: "nope", prompt: "a" }, 404, 'model "nope" not found, try pulling it first');
    await check("/api/embeddings", { prompt: "a" }, 400, "model is required");
  });

  it("makes room for a third model as Ollama does: the idle worker model, or the pinned embedder while the worker model is busy", async () => {
    const third = { name: "mxbai-embed-large:latest", embeddingSize: 16 };
    const sim = await start({ maxLoadedModels: 2, tokensPerSecond: 50, models: [...DEFAULT_MODELS, third] });
    const pin = await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: "x", keep_alive: -1 });
    expect(pin.status).to.equal(200);
    const chat = { model: "llama3.2", messages: [{ role: "user", content: "hi" }], options: { num_predict: 2 } };
    expect((await postJson(`${sim.url}/api/chat`, { ...chat, stream: false })).status).to.equal(200);

    // Both idle: the shortest keep-alive goes (the chat model's 5 minutes, not the embedder's "forever").
    expect((await postJson(`${sim.url}/api/embed`, { model: third.name, input: "y" })).status).to.equal(200);
    expect(sim.stats().evictions.byModel).to.deep.equal({ "llama3.2:latest": 1 });

    // The chat model back in the third model's place, and generating: the idle one is the pinned embedder.
    const streaming = await postJson(`${sim.url}/api/chat`, { ...chat, options: { num_predict: 100 } });
    const reader = streaming.body!.getReader();
    await reader.read();
    expect((await postJson(`${sim.url}/api/embed`, { model: third.name, input: "z" })).status).to.equal(200);
    expect(sim.stats().evictions.byModel).to.deep.equal({
      "llama3.2:latest": 1,
      "mxbai-embed-large:latest": 1,
      "nomic-embed-text:latest": 1,
    });
    await reader.cancel();
  });

  it("serves the legacy /api/embeddings with one vector", async () => {
    const sim = await start();
    const body = (await (
      await postJson(`${sim.url}/api/embeddings`, { model: "nomic-embed-text", prompt: "a" })
    ).json()) as { embedding: number[] };
    expect(Object.keys(body)).to.deep.equal(["embedding"]);
    expect(body.embedding).to.have.length(768);
    const empty = await (await postJson(`${sim.url}/api/embeddings`, { model: "nomic-embed-text" })).json();
    expect(empty).to.deep.equal({ embedding: [] });
  });
});
