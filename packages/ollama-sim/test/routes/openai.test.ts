import type {
  OpenAIChatCompletion,
  OpenAIChatCompletionChunk,
  OpenAICompletion,
  OpenAIEmbeddingList,
  OpenAIErrorResponse,
  OpenAIModelList,
} from "@foreman/shared";
import { expect } from "chai";
import { parseSse, postJson, simulators } from "../helpers.js";

const messages = [{ role: "user", content: "Hello" }];

function at<T>(items: readonly T[], index: number): T {
  const item = items.at(index);
  if (item === undefined) throw new Error(`no item at ${index}`);
  return item;
}

describe("routes/openai", () => {
  const start = simulators();

  it("streams chat completions as SSE chunks ending in [DONE]", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/v1/chat/completions`, {
      model: "llama3.2",
      messages,
      stream: true,
      max_tokens: 4,
      stream_options: { include_usage: true },
    });
    expect(res.headers.get("content-type")).to.equal("text/event-stream");
    const events = parseSse(await res.text());
    expect(events.at(-1)).to.equal("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as OpenAIChatCompletionChunk);
    expect(chunks).to.have.length(6); // 4 tokens, finish, usage
    expect(at(at(chunks, 0).choices, 0).delta).to.have.property("role", "assistant");
    expect(at(at(chunks, 1).choices, 0).delta).to.not.have.property("role");
    expect(new Set(chunks.map((c) => c.id)).size).to.equal(1);
    expect(at(chunks, 0).id).to.match(/^chatcmpl-\d+$/);
    expect(at(chunks, 0)).to.include({
      object: "chat.completion.chunk",
      model: "llama3.2",
      system_fingerprint: "fp_ollama",
    });
    expect(at(chunks, 4).choices).to.deep.equal([{ index: 0, delta: {}, finish_reason: "length" }]);
    expect(at(chunks, 5).choices).to.deep.equal([]);
    expect(at(chunks, 5).usage?.completion_tokens).to.equal(4);
  });

  it("answers a non-streamed chat completion with usage", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/v1/chat/completions`, { model: "llama3.2", messages });
    expect(res.headers.get("content-type")).to.equal("application/json");
    const body = (await res.json()) as OpenAIChatCompletion;
    expect(body.object).to.equal("chat.completion");
    const choice = at(body.choices, 0);
    expect(choice.message.role).to.equal("assistant");
    expect(choice.finish_reason).to.equal("stop");
    expect(body.usage.total_tokens).to.equal(body.usage.prompt_tokens + body.usage.completion_tokens);
  });

  it("streams text completions", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/v1/completions`, {
      model: "llama3.2",
      prompt: "Once",
      stream: true,
      max_tokens: 3,
    });
    const events = parseSse(await res.text());
    expect(events.at(-1)).to.equal("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as OpenAICompletion);
    expect(chunks).to.have.length(4);
    expect(at(chunks, 0).object).to.equal("text_completion");
    expect(at(at(chunks, 3).choices, 0)).to.deep.equal({ text: "", index: 0, finish_reason: "length" });
    const whole = (await (
      await postJson(`${sim.url}/v1/completions`, { model: "llama3.2", prompt: "Once" })
    ).json()) as OpenAICompletion;
    expect(at(whole.choices, 0).text).to.be.a("string").and.not.equal("");
  });

  it("serves embeddings as floats or base64", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/v1/embeddings`, { model: "nomic-embed-text", input: ["a", "b"] });
    const body = (await res.json()) as OpenAIEmbeddingList;
    expect(body.object).to.equal("list");
    expect(body.data).to.have.length(2);
    expect(at(body.data, 1)).to.include({ object: "embedding", index: 1 });
    const floats = at(body.data, 0).embedding as number[];
    expect(floats).to.have.length(768);
    expect(body.usage.prompt_tokens).to.equal(body.usage.total_tokens);
    const b64 = (await (
      await postJson(`${sim.url}/v1/embeddings`, { model: "nomic-embed-text", input: "a", encoding_format: "base64" })
    ).json()) as OpenAIEmbeddingList;
    const bytes = Buffer.from(at(b64.data, 0).embedding as string, "base64");
    const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    expect(decoded).to.have.length(768);
    expect(decoded[0]).to.be.closeTo(at(floats, 0), 1e-7);
    const bad = await postJson(`${sim.url}/v1/embeddings`, { model: "nomic-embed-text", input: [] });
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.deep.equal({
      error: { message: "invalid input", type: "invalid_request_error", param: null, code: null },
    });
  });

  it("lists and retrieves models", async () => {
    const sim = await start();
    const list = (await (await fetch(`${sim.url}/v1/models`)).json()) as OpenAIModelList;
    expect(list.object).to.equal("list");
    expect(at(list.data, 0)).to.have.keys("id", "object", "created", "owned_by");
    expect(at(list.data, 0)).to.include({ id: "llama3.2:latest", object: "model", owned_by: "library" });
    const one = await fetch(`${sim.url}/v1/models/qwen3:8b`);
    expect(await one.json()).to.include({ id: "qwen3:8b", object: "model" });
    const missing = await fetch(`${sim.url}/v1/models/nope`);
    expect(missing.status).to.equal(404);
  });

  it("reports errors in OpenAI's shape", async () => {
    const sim = await start();
    const unknown = await postJson(`${sim.url}/v1/chat/completions`, { model: "nope", messages });
    expect(unknown.status).to.equal(404);
    expect(await unknown.json()).to.deep.equal({
      error: { message: "model 'nope' not found", type: "not_found_error", param: null, code: null },
    });
    const empty = await postJson(`${sim.url}/v1/chat/completions`, { model: "llama3.2", messages: [] });
    expect(empty.status).to.equal(400);
    expect(((await empty.json()) as OpenAIErrorResponse).error.message).to.equal("[] is too short - 'messages'");
  });
});
