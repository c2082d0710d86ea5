import { expect } from "chai";
import { parseNdjson, postJson, simulators } from "../helpers.js";

const messages = [{ role: "user", content: "Why is the sky blue?" }];

describe("routes/chat", () => {
  const start = simulators();

  it("streams assistant message chunks and a done chunk with metrics", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, options: { num_predict: 5 } });
    expect(res.headers.get("content-type")).to.equal("application/x-ndjson");
    const chunks = parseNdjson(await res.text());
    expect(chunks).to.have.length(6);
    expect(chunks[0]).to.have.keys("model", "created_at", "message", "done");
    expect((chunks[0] as { message: unknown }).message).to.have.keys("role", "content");
    const final = chunks[5] as Record<string, unknown>;
    expect(final.message).to.deep.equal({ role: "assistant", content: "" });
    expect(final).to.include({ done: true, done_reason: "length", eval_count: 5 });
    expect(final).to.have.keys(
      "model",
      "created_at",
      "message",
      "done",
      "done_reason",
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_count",
      "eval_duration",
    );
  });

  it("answers stream:false with the whole message, thinking included on a thinking model", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/chat`, { model: "qwen3:8b", messages, stream: false });
    expect(res.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    const answer = (await res.json()) as { message: { role: string; content: string; thinking: string } };
    expect(answer.message.role).to.equal("assistant");
    expect(answer.message.thinking).to.be.a("string").and.not.equal("");
    expect(answer.message.content).to.be.a("string").and.not.equal("");
    const noThink = await postJson(`${sim.url}/api/chat`, { model: "qwen3:8b", messages, stream: false, think: false });
    expect(((await noThink.json()) as { message: object }).message).to.not.have.property("thinking");
  });

  it("accepts tools on a tools-capable model and refuses them elsewhere", async () => {
    const sim = await start();
    const tools = [{ type: "function", function: { name: "now", parameters: { type: "object", properties: {} } } }];
    const ok = await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages, tools, stream: false });
    expect(ok.status).to.equal(200);
    const refused = await postJson(`${sim.url}/api/chat`, { model: "gemma3:4b", messages, tools, stream: false });
    expect(refused.status).to.equal(400);
    expect(await refused.json()).to.deep.equal({
      error: "registry.ollama.ai/library/gemma3:4b does not support tools",
    });
  });

  it("loads with no messages and unloads with keep_alive 0", async () => {
    const sim = await start();
    const load = (await (await postJson(`${sim.url}/api/chat`, { model: "llama3.2", messages: [] })).json()) as object;
    expect(load).to.deep.include({ message: { role: "assistant", content: "" }, done: true, done_reason: "load" });
    const unload = (await (
      await postJson(`${sim.url}/api/chat`, { model: "llama3.2", keep_alive: 0 })
    ).json()) as object;
    expect(unload).to.deep.include({ done: true, done_reason: "unload" });
    expect(sim.loaded()).to.deep.equal([]);
  });

  describe("errors, as ChatHandler answers them", () => {
    const cases: Array<[string, unknown, number, string]> = [
      ["an unknown model", { model: "nope", messages }, 404, "model 'nope' not found"],
      ["no model", { messages }, 400, "model is required"],
      ["an embedding model", { model: "nomic-embed-text", messages }, 400, '"nomic-embed-text" does not support chat'],
      [
        "think on a non-thinking model",
        { model: "llama3.2", messages, think: "high" },
        400,
        '"llama3.2" does not support thinking',
      ],
      [
        "a bad think value",
        { model: "qwen3:8b", messages, think: "lots" },
        400,
        'invalid think value: "lots" (must be "high", "medium", "low", "max", true, or false)',
      ],
      [
        "a non-object message",
        { model: "llama3.2", messages: ["hi"] },
        400,
        "json: cannot unmarshal string into Go struct field ChatRequest.messages of type api.Message",
      ],
      [
        "a wrongly typed keep_alive",
        { model: "llama3.2", messages, keep_alive: true },
        400,
        "Unsupported type: 'bool'",
      ],
    ];
    for (const [what, body, status, message] of cases) {
      it(`${status} for ${what}`, async () => {
        const sim = await start();
        const res = await postJson(`${sim.url}/api/chat`, body);
        expect(res.status).to.equal(status);
        expect(await res.json()).to.deep.equal({ error: message });
      });
    }
  });
});
