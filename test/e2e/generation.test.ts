import { ChatOllama } from "@langchain/ollama";
import { expect } from "chai";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { openDb } from "./db.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

const TIMING = new Set([
  "created_at",
  "total_duration",
  "load_duration",
  "prompt_eval_duration",
  "eval_duration",
  "created",
  "id",
]);

/** The answer without the fields that legitimately differ between two runs (timings, ids). */
function untimed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untimed);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([k]) => !TIMING.has(k))
        .map(([k, v]) => [k, untimed(v)]),
    );
  }
  return value;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("e2e: generation through the queue is answered as the target would", function () {
  this.timeout(30_000);
  let sim: Simulator;
  let f: Foreman;

  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 2000 });
    f = await foreman({ ollamaUrl: sim.url });
    await f.startGateway();
    await f.startWorker().waitForLog("active worker");
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  const through = () => new Ollama({ host: f.url });
  const direct = () => new Ollama({ host: sim.url });
  const messages = [{ role: "user", content: "Why is the sky blue?" }];

  it("ollama client: chat, not streamed", async () => {
    const a = await through().chat({ model: "llama3.2", messages, stream: false });
    const b = await direct().chat({ model: "llama3.2", messages, stream: false });
    expect(untimed(a)).to.deep.equal(untimed(b));
    expect(a.message.content.length).to.be.greaterThan(10);
    expect(a.eval_count).to.be.greaterThan(0);
  });

  it("ollama client: chat, streamed chunk for chunk", async () => {
    const a = await collect(
      await through().chat({ model: "llama3.2", messages, stream: true, options: { num_predict: 40 } }),
    );
    const b = await collect(
      await direct().chat({ model: "llama3.2", messages, stream: true, options: { num_predict: 40 } }),
    );
    expect(a).to.have.length(41);
    expect(untimed(a)).to.deep.equal(untimed(b));
    expect(a.at(-1)).to.include({ done: true, done_reason: "length" });
  });

  it("ollama client: generate, streamed and not", async () => {
    const a = await through().generate({ model: "qwen3:8b", prompt: "Say hi", stream: false });
    const b = await direct().generate({ model: "qwen3:8b", prompt: "Say hi", stream: false });
    expect(untimed(a)).to.deep.equal(untimed(b));
    const sa = await collect(await through().generate({ model: "qwen3:8b", prompt: "Say hi", stream: true }));
    const sb = await collect(await direct().generate({ model: "qwen3:8b", prompt: "Say hi", stream: true }));
    expect(untimed(sa)).to.deep.equal(untimed(sb));
  });

  it("raw HTTP: NDJSON content type, one object per line, job id header", async () => {
    const res = await fetch(`${f.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "x" }),
    });
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("application/x-ndjson");
    expect(res.headers.get("x-foreman-job-id")).to.match(/^[0-9A-Z]{26}$/);
    const text = await res.text();
    expect(text.endsWith("\n")).to.equal(true);
    const lines = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.at(-1).done).to.equal(true);
    const whole = await fetch(`${f.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "x", stream: false }),
    });
    expect(whole.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    const directWhole = await fetch(`${sim.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "x", stream: false }),
    });
    expect(untimed(await whole.json())).to.deep.equal(untimed(await directWhole.json()));
  });

  it("unknown model: the same 404 status and message as the target, for chat and generate", async () => {
    for (const call of [
      (c: Ollama) => c.chat({ model: "no-such-model", messages }),
      (c: Ollama) => c.generate({ model: "no-such-model", prompt: "x" }),
    ]) {
      const [a, b] = await Promise.all(
        [through(), direct()].map((c) =>
          call(c).then(
            () => null,
            (e: Error & { status_code?: number }) => e,
          ),
        ),
      );
      expect(a?.status_code).to.equal(404);
      expect(a?.status_code).to.equal(b?.status_code);
      expect(a?.message).to.equal(b?.message);
    }
  });

  it("bad bodies get a clear 4xx naming the field, and nothing is queued", async () => {
    const cases: Array<[string, unknown, number, RegExp]> = [
      ["/api/chat", { messages: [] }, 400, /model is required/],
      ["/api/chat", { model: "llama3.2", messages: "hi" }, 400, /messages must be an array/],
      ["/api/generate", { model: "llama3.2", stream: "yes" }, 400, /stream must be a boolean/],
      ["/api/generate", { model: 42 }, 400, /model must be a string/],
      ["/api/chat", "[1,2]", 400, /JSON object/],
      ["/api/chat", "{not json", 400, /invalid JSON body/],
    ];
    const db = openDb(f.dataDir);
    const before = db.count();
    for (const [path, body, status, pattern] of cases) {
      const res = await fetch(`${f.url}${path}`, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      expect(res.status, JSON.stringify(body)).to.equal(status);
      expect(((await res.json()) as { error: string }).error).to.match(pattern);
    }
    expect(db.count()).to.equal(before);
    db.close();
  });

  it("@langchain/ollama ChatOllama: invoke and stream give the target's text", async () => {
    const a = new ChatOllama({ baseUrl: f.url, model: "gemma3:4b" });
    const b = new ChatOllama({ baseUrl: sim.url, model: "gemma3:4b" });
    const [ra, rb] = [await a.invoke("Tell me a story"), await b.invoke("Tell me a story")];
    expect(ra.content).to.equal(rb.content);
    expect(String(ra.content).length).to.be.greaterThan(10);
    const chunksA = (await collect(await a.stream("Stream please"))).map((c) => c.content);
    const chunksB = (await collect(await b.stream("Stream please"))).map((c) => c.content);
    expect(chunksA).to.deep.equal(chunksB);
  });

  it("openai package on /v1: chat completions (SSE and not) and completions", async () => {
    const a = new OpenAI({ baseURL: `${f.url}/v1`, apiKey: "unused" });
    const b = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: "unused" });
    const body = { model: "llama3.2", messages: [{ role: "user" as const, content: "hello" }] };
    expect(untimed(await a.chat.completions.create(body))).to.deep.equal(
      untimed(await b.chat.completions.create(body)),
    );
    const sa = await collect(await a.chat.completions.create({ ...body, stream: true }));
    const sb = await collect(await b.chat.completions.create({ ...body, stream: true }));
    expect(sa.length).to.be.greaterThan(2);
    expect(untimed(sa)).to.deep.equal(untimed(sb));
    const ca = await a.completions.create({ model: "llama3.2", prompt: "once upon" });
    const cb = await b.completions.create({ model: "llama3.2", prompt: "once upon" });
    expect(untimed(ca)).to.deep.equal(untimed(cb));
    const missing = await a.chat.completions
      .create({ ...body, model: "no-such-model" })
      .catch((e: { status: number }) => e);
    const missingDirect = await b.chat.completions
      .create({ ...body, model: "no-such-model" })
      .catch((e: { status: number }) => e);
    expect((missing as { status: number }).status).to.equal((missingDirect as { status: number }).status);
  });

  it("raw SSE framing on /v1/chat/completions ends with [DONE]", async () => {
    const res = await fetch(`${f.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "x" }], stream: true }),
    });
    expect(res.headers.get("content-type")).to.match(/^text\/event-stream/);
    const text = await res.text();
    expect(text.endsWith("data: [DONE]\n\n")).to.equal(true);
    for (const event of text.trimEnd().split("\n\n")) expect(event.startsWith("data: ")).to.equal(true);
  });
});
