import { expect } from "chai";
import { ForemanClient, JobFailedError } from "../../packages/client/src/index.js";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

const TOKEN = "client-e2e-token-0123456789";

describe("e2e: @foreman/client against the real gateway and worker", function () {
  this.timeout(30_000);
  let sim: Simulator;
  let f: Foreman;
  let client: ForemanClient;

  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 3000 });
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_API_TOKEN: TOKEN } });
    await f.startGateway();
    await f.startWorker().waitForLog("active worker");
    client = new ForemanClient({ baseUrl: f.url, token: TOKEN });
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("run() submits, waits and returns the finished job; chat() returns its text", async () => {
    const job = await client.run({ model: "llama3.2", prompt: "Say something", metadata: { from: "client" } });
    expect(job.state).to.equal("done");
    expect(job.metadata).to.deep.equal({ from: "client" });
    const answer = await client.chat("qwen3:8b", [{ role: "user", content: "hello" }]);
    expect(answer.text.length).to.be.greaterThan(0);
    expect(answer.job.state).to.equal("done");
  });

  it("run() rejects with JobFailedError carrying the job when the model is unknown", async () => {
    const error = await client.run({ model: "no-such-model", prompt: "x" }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(JobFailedError);
    expect((error as JobFailedError).job.state).to.equal("failed");
    expect((error as JobFailedError).job.error).to.match(/not found/);
  });

  it("stream(), artifacts, list and cancel", async () => {
    const job = await client.submit({ model: "gemma3:4b", messages: [{ role: "user", content: "stream" }] });
    const chunks = [];
    for await (const chunk of client.stream(job.id)) chunks.push(chunk);
    expect(chunks.at(-1)).to.include({ done: true });
    const transcript = await client.artifactText(job.id, "transcript.ndjson");
    expect(transcript.trimEnd().split("\n")).to.have.length(chunks.length);
    const page = await client.list({ model: "gemma3:4b", limit: 5 });
    expect(page.jobs[0]?.id).to.equal(job.id);
    const done = await client.cancel(job.id).catch((e: { status: number }) => e);
    expect((done as { status: number }).status).to.equal(409);
  });

  it("a wrong token is a 401 whose message does not contain any token", async () => {
    const wrong = new ForemanClient({ baseUrl: f.url, token: "not-the-right-token-000" });
    const error = (await wrong.list().catch((e: unknown) => e)) as { status: number; message: string };
    expect(error.status).to.equal(401);
    expect(error.message).to.not.include(TOKEN).and.not.include("not-the-right-token-000");
  });
});
