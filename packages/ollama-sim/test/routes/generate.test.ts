import { expect } from "chai";
import { parseNdjson, postJson, simulators } from "../helpers.js";

describe("routes/generate", () => {
  const start = simulators();

  it("streams NDJSON: one token per line, a final chunk with context and metrics", async () => {
    const sim = await start({ tokensPerSecond: 2000 });
    const res = await postJson(`${sim.url}/api/generate`, {
      model: "llama3.2",
      prompt: "Why is the sky blue?",
      options: { num_predict: 12 },
    });
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("application/x-ndjson");
    const chunks = parseNdjson(await res.text());
    expect(chunks).to.have.length(13);
    for (const chunk of chunks.slice(0, 12)) {
      expect(Object.keys(chunk)).to.deep.equal(["model", "created_at", "response", "done"]);
      expect(chunk.model).to.equal("llama3.2");
      expect(chunk.created_at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(chunk.done).to.equal(false);
    }
    const final = chunks[12] as Record<string, unknown>;
    expect(Object.keys(final)).to.deep.equal([
      "model",
      "created_at",
      "response",
      "done",
      "done_reason",
      "context",
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_count",
      "eval_duration",
    ]);
    expect(final).to.include({ response: "", done: true, done_reason: "length", eval_count: 12 });
    // 12 tokens at 2000 tokens/s: eval_duration is 6 ms, in nanoseconds.
    expect(final.eval_duration).to.equal(6_000_000);
    expect(final.total_duration as number).to.be.at.least(
      (final.load_duration as number) + (final.prompt_eval_duration as number) + (final.eval_duration as number),
    );
    expect(final.context as number[]).to.have.length((final.prompt_eval_count as number) + 12);
  });

  it("answers stream:false with one JSON object holding the whole text", async () => {
    const sim = await start();
    const body = { model: "llama3.2", prompt: "Hello", stream: false, options: { seed: 42 } };
    const res = await postJson(`${sim.url}/api/generate`, body);
    expect(res.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).to.include({ model: "llama3.2", done: true, done_reason: "stop", eval_count: 24 });
    expect(answer.response).to.be.a("string").and.match(/\.$/);
    const again = (await (await postJson(`${sim.url}/api/generate`, body)).json()) as Record<string, unknown>;
    expect(again.response).to.equal(answer.response);
  });

  it("loads the model for an empty prompt and unloads it with keep_alive 0", async () => {
    const sim = await start();
    const load = await postJson(`${sim.url}/api/generate`, { model: "llama3.2" });
    expect(load.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    expect(await load.json()).to.include({ model: "llama3.2", response: "", done: true, done_reason: "load" });
    expect(sim.loaded().map((m) => m.name)).to.deep.equal(["llama3.2:latest"]);
    const unload = await postJson(`${sim.url}/api/generate`, { model: "llama3.2", keep_alive: 0 });
    expect(await unload.json()).to.include({ done: true, done_reason: "unload" });
    expect(sim.loaded()).to.deep.equal([]);
    expect(sim.stats().unloads.byModel).to.deep.equal({ "llama3.2:latest": 1 });
  });

  it("emits thinking before the response on a thinking model", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/generate`, {
      model: "qwen3:8b",
      prompt: "Think",
      options: { num_predict: 9 },
    });
    const chunks = parseNdjson(await res.text());
    expect(chunks.slice(0, 3).every((c) => c.response === "" && typeof c.thinking === "string")).to.equal(true);
    expect(chunks.slice(3, 9).every((c) => c.thinking === undefined && c.response !== "")).to.equal(true);
  });

  it("produces parseable JSON for format json", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/generate`, {
      model: "llama3.2",
      prompt: "x",
      format: "json",
      stream: false,
    });
    const answer = (await res.json()) as { response: string };
    expect(JSON.parse(answer.response)).to.have.property("answer");
  });

  describe("errors, as GenerateHandler answers them", () => {
    const cases: Array<[string, unknown, number, string]> = [
      ["an unknown model", { model: "nope", prompt: "x" }, 404, "model 'nope' not found"],
      ["no model (a 404 here)", { prompt: "x" }, 404, "model '' not found"],
      ["an invalid name", { model: "bad name!", prompt: "x" }, 400, "invalid model name"],
      [
        "an embedding model",
        { model: "nomic-embed-text", prompt: "x" },
        400,
        '"nomic-embed-text" does not support generate',
      ],
      [
        "think on a non-thinking model",
        { model: "gemma3:4b", prompt: "x", think: true },
        400,
        '"gemma3:4b" does not support thinking',
      ],
      [
        "a bad keep_alive",
        { model: "llama3.2", prompt: "x", keep_alive: "5 minutes" },
        400,
        'time: unknown unit " minutes" in duration "5 minutes"',
      ],
      [
        "a wrongly typed field",
        { model: "llama3.2", prompt: 5 },
        400,
        "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string",
      ],
      [
        "raw with a system prompt",
        { model: "llama3.2", prompt: "x", raw: true, system: "s" },
        400,
        "raw mode does not support template, system, or context",
      ],
      [
        "a bad top_logprobs",
        { model: "llama3.2", prompt: "x", top_logprobs: 21 },
        400,
        "top_logprobs must be between 0 and 20",
      ],
      [
        "a bad option type",
        { model: "llama3.2", prompt: "x", options: { seed: "s" } },
        500,
        'option "seed" must be of type integer',
      ],
    ];
    for (const [what, body, status, message] of cases) {
      it(`${status} for ${what}`, async () => {
        const sim = await start();
        const res = await postJson(`${sim.url}/api/generate`, body);
        expect(res.status).to.equal(status);
        expect(res.headers.get("content-type")).to.equal("application/json; charset=utf-8");
        expect(await res.json()).to.deep.equal({ error: message });
      });
    }

    it("400 for a missing or broken body", async () => {
      const sim = await start();
      expect(await (await postJson(`${sim.url}/api/generate`, "")).json()).to.deep.equal({
        error: "missing request body",
      });
      expect(await (await postJson(`${sim.url}/api/generate`, "{oops")).json()).to.deep.equal({
        error: "unexpected EOF",
      });
      expect(await (await postJson(`${sim.url}/api/generate`, "hello")).json()).to.deep.equal({
        error: "invalid character 'h' looking for beginning of value",
      });
    });
  });
});
