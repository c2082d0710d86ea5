import { expect } from "chai";
import { Ollama } from "ollama";
import { simulators } from "./helpers.js";

/** The real ollama-js client against the simulator: what foreman's users will point at it. */
describe("ollama-client", () => {
  const start = simulators();

  async function client(options = {}) {
    const sim = await start(options);
    return { sim, ollama: new Ollama({ host: sim.url }) };
  }

  it("lists models, shows one and reads the version", async () => {
    const { ollama } = await client({ version: "0.32.14" });
    const list = await ollama.list();
    expect(list.models.map((m) => m.name)).to.include("nomic-embed-text:latest");
    const show = await ollama.show({ model: "llama3.2" });
    expect(show.details.family).to.equal("llama");
    expect(show.capabilities).to.include("completion");
    expect(await ollama.version()).to.deep.equal({ version: "0.32.14" });
  });

  it("lists running models with expires_at after a load", async () => {
    const { ollama } = await client();
    await ollama.generate({ model: "llama3.2", prompt: "", keep_alive: "10m" });
    const ps = await ollama.ps();
    expect(ps.models).to.have.length(1);
    expect(ps.models[0]?.name).to.equal("llama3.2:latest");
    expect(Number.isNaN(new Date(ps.models[0]?.expires_at as unknown as string).getTime())).to.equal(false);
    expect(ps.models[0]?.size_vram).to.be.greaterThan(0);
  });

  it("chats, streamed and not, with consistent final metrics", async () => {
    const { ollama } = await client({ tokensPerSecond: 1000 });
    const whole = await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "Hi" }] });
    expect(whole.done).to.equal(true);
    expect(whole.message.role).to.equal("assistant");
    expect(whole.message.content.length).to.be.greaterThan(0);
    expect(whole.eval_count).to.equal(24);
    expect(whole.eval_count / (whole.eval_duration / 1e9)).to.be.closeTo(1000, 1e-6);
    expect(whole.total_duration).to.be.at.least(whole.load_duration + whole.prompt_eval_duration + whole.eval_duration);

    const stream = await ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "Hi" }], stream: true });
    let text = "";
    let last: Awaited<ReturnType<typeof ollama.chat>> | undefined;
    for await (const part of stream) {
      text += part.message.content;
      last = part;
    }
    expect(text).to.equal(whole.message.content);
    expect(last?.done).to.equal(true);
    expect(last?.done_reason).to.equal("stop");
    expect(last?.eval_count).to.equal(24);
  });

  it("generates, streamed and not", async () => {
    const { ollama } = await client();
    const whole = await ollama.generate({
      model: "llama3.2",
      prompt: "Once upon a time",
      options: { num_predict: 10 },
    });
    expect(whole.done_reason).to.equal("length");
    expect(whole.eval_count).to.equal(10);
    expect(whole.context).to.be.an("array").that.is.not.empty;
    const stream = await ollama.generate({
      model: "llama3.2",
      prompt: "Once upon a time",
      options: { num_predict: 10 },
      stream: true,
    });
    let text = "";
    let chunks = 0;
    for await (const part of stream) {
      text += part.response;
      chunks++;
    }
    expect(chunks).to.equal(11);
    expect(text).to.equal(whole.response);
  });

  it("embeds with embed and the legacy embeddings", async () => {
    const { ollama } = await client();
    const embed = await ollama.embed({ model: "nomic-embed-text", input: ["one", "two"] });
    expect(embed.embeddings).to.have.length(2);
    expect(embed.embeddings[0]).to.have.length(768);
    const legacy = await ollama.embeddings({ model: "nomic-embed-text", prompt: "one" });
    expect(legacy.embedding).to.have.length(768);
    expect(legacy.embedding[0]).to.be.closeTo(embed.embeddings[0]?.[0] as number, 1e-6);
  });

  it("pulls with streamed progress", async () => {
    const { ollama } = await client();
    const statuses: string[] = [];
    for await (const progress of await ollama.pull({ model: "phi4-mini", stream: true }))
      statuses.push(progress.status);
    expect(statuses[0]).to.equal("pulling manifest");
    expect(statuses.at(-1)).to.equal("success");
  });

  it("throws ResponseError 404 with Ollama's message for an unknown model", async () => {
    const { ollama } = await client();
    let error: unknown;
    try {
      await ollama.chat({ model: "does-not-exist", messages: [{ role: "user", content: "Hi" }] });
    } catch (e) {
      error = e;
    }
    expect(error).to.have.property("name", "ResponseError");
    expect(error).to.have.property("status_code", 404);
    expect(error).to.have.property("error", "model 'does-not-exist' not found");
  });

  it("sends its configured headers, so a bearer token reaches the simulator", async () => {
    const sim = await start({ token: "tok" });
    const denied = new Ollama({ host: sim.url });
    let error: unknown;
    try {
      await denied.list();
    } catch (e) {
      error = e;
    }
    expect(error).to.have.property("status_code", 401);
    const allowed = new Ollama({ host: sim.url, headers: { Authorization: "Bearer tok" } });
    expect((await allowed.list()).models.length).to.be.greaterThan(0);
    expect(sim.stats().lastAuthorizations.at(-1)).to.equal("Bearer tok");
  });
});
