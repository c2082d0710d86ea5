import { randomUUID } from "node:crypto";
import { embed, embedMany, generateText, Output, stepCountIs, streamText, tool } from "ai";
import { expect } from "chai";
import { z } from "zod";
import { createForeman, type ForemanProvider } from "../../packages/ai-sdk/src/index.js";
import { type ChatResponse, ForemanClient } from "../../packages/client/src/index.js";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { startCuttingProxy } from "./cutting-proxy.js";
import { type Foreman, foreman as startForeman, stopAll } from "./harness.js";
import { startToolCallingTarget, type ToolCallingTarget } from "./tool-calling-target.js";

const TOKEN = "ai-sdk-e2e-token-0123456789";

/** The chat requests the simulator has answered so far. */
const chatCalls = (sim: Simulator) => sim.stats().requests.byRoute["POST /api/chat"] ?? 0;

describe("e2e: the AI SDK's own functions with foreman() against gateway, worker and the simulator", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let target: ToolCallingTarget;
  let f: Foreman;
  let foreman: ForemanProvider;
  let client: ForemanClient;

  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 3000 });
    // The simulator cannot call tools: a loopback target in front of it answers the tool-offering chats.
    target = await startToolCallingTarget(sim.url, { name: "weather", arguments: { city: "Oslo" } });
    f = await startForeman({ ollamaUrl: target.url, env: { FOREMAN_API_TOKEN: TOKEN } });
    await f.startGateway();
    await f.startWorker().waitForLog("active worker");
    foreman = createForeman({ baseURL: f.url, token: TOKEN });
    client = new ForemanClient({ baseUrl: f.url, token: TOKEN });
  });
  after(async () => {
    await stopAll();
    await target?.close();
    await sim?.close();
  });

  it("generateText: one job, its answer, usage and the job id; an idempotency key does not generate twice", async () => {
    const key = `ai-sdk-${randomUUID()}`;
    const callsBefore = chatCalls(sim);
    const first = await generateText({
      model: foreman("llama3.2"),
      system: "Be brief.",
      prompt: "Why is the sky blue?",
      maxOutputTokens: 30,
      providerOptions: { foreman: { metadata: { run: "e2e" }, idempotencyKey: key } },
    });
    const jobId = first.providerMetadata?.foreman?.jobId as string;
    const job = await client.get(jobId);
    expect(job.state).to.equal("done");
    expect(job.metadata).to.deep.equal({ run: "e2e" });
    expect(first.text)
      .to.equal((job.result as ChatResponse).message.content)
      .and.not.equal("");
    expect(first.response.id).to.equal(jobId);
    expect(first.usage.outputTokens).to.equal(job.metrics?.eval_count);
    expect(first.finishReason).to.equal("length");

    const again = await generateText({
      model: foreman("llama3.2"),
      system: "Be brief.",
      prompt: "Why is the sky blue?",
      maxOutputTokens: 30,
      providerOptions: { foreman: { metadata: { run: "e2e" }, idempotencyKey: key } },
    });
    expect(again.providerMetadata?.foreman?.jobId).to.equal(jobId);
    expect(again.text).to.equal(first.text);
    expect(chatCalls(sim) - callsBefore).to.equal(1);
  });

  it("streamText follows the job's durable stream: a connection cut mid-way loses and repeats nothing", async () => {
    const proxy = await startCuttingProxy({
      targetPort: f.port,
      match: /^GET \/jobs\/[^/]+\/stream/,
      cuts: 1,
      cutAfterBodyBytes: 250,
    });
    try {
      const flaky = createForeman({ baseURL: proxy.url, token: TOKEN, retry: { minDelayMs: 10, maxDelayMs: 50 } });
      const result = streamText({ model: flaky("gemma3:4b"), prompt: "Tell me about queues", maxOutputTokens: 50 });
      const deltas: string[] = [];
      for await (const delta of result.textStream) deltas.push(delta);
      const jobId = (await result.providerMetadata)?.foreman?.jobId as string;
      const job = await client.get(jobId);
      expect(proxy.cutCount).to.equal(1);
      expect(deltas.join("")).to.equal((job.result as ChatResponse).message.content);
      const transcript = (await client.artifactText(jobId, "transcript.ndjson")).trimEnd().split("\n");
      expect(deltas).to.have.length(transcript.filter((line) => JSON.parse(line).message.content !== "").length);
      expect((await result.usage).outputTokens).to.equal(job.metrics?.eval_count);
      expect(job.attempts).to.equal(1);
    } finally {
      await proxy.close();
    }
  });

  it("structured output: a JSON schema goes to Ollama as `format` and comes back as the object", async () => {
    const { output } = await generateText({
      model: foreman("qwen3:8b"),
      prompt: "Answer in JSON",
      output: Output.object({ schema: z.object({ answer: z.string() }) }),
    });
    expect(output.answer).to.be.a("string").and.not.equal("");
  });

  it("tools: Ollama's tool_calls come back as the AI SDK's tool calls, and the result goes back as a tool message", async () => {
    const seen: string[] = [];
    const result = await generateText({
      model: foreman("llama3.2"),
      prompt: "What is the weather in Oslo?",
      tools: {
        weather: tool({
          description: "The weather in a city",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            seen.push(city);
            return { city, celsius: 3 };
          },
        }),
      },
      stopWhen: stepCountIs(2),
    });
    expect(seen).to.deep.equal(["Oslo"]);
    expect(result.steps).to.have.length(2);
    expect(result.steps[0]!.finishReason).to.equal("tool-calls");
    expect(result.steps[0]!.toolCalls.map((c) => [c.toolName, c.input])).to.deep.equal([["weather", { city: "Oslo" }]]);
    expect(result.text).to.not.equal("");

    const offered = target.toolChats.at(-1) as {
      tools: Array<{ type: string; function: { name: string; parameters: { properties: object } } }>;
    };
    expect(offered.tools.map((t) => [t.type, t.function.name])).to.deep.equal([["function", "weather"]]);
    expect(offered.tools[0]!.function.parameters.properties).to.have.property("city");
    const followUp = target.passedChats.at(-1) as { messages: Array<Record<string, unknown>> };
    expect(followUp.messages.at(-2)).to.deep.include({ role: "assistant" });
    expect((followUp.messages.at(-2)?.tool_calls as unknown[])?.length).to.equal(1);
    expect(followUp.messages.at(-1)).to.deep.include({
      role: "tool",
      tool_name: "weather",
      content: JSON.stringify({ city: "Oslo", celsius: 3 }),
    });
  });

  it("embed and embedMany go through the gateway's /api/embed bypass", async () => {
    const one = await embed({ model: foreman.embeddingModel("nomic-embed-text"), value: "queues" });
    expect(one.embedding.length).to.be.greaterThan(0);
    const many = await embedMany({
      model: foreman.embeddingModel("nomic-embed-text"),
      values: ["queues", "streams", "webhooks"],
    });
    expect(many.embeddings).to.have.length(3);
    expect(many.embeddings[0]).to.deep.equal(one.embedding);
  });

  it("aborting streamText cancels the job", async () => {
    const controller = new AbortController();
    const tag = randomUUID();
    const result = streamText({
      model: foreman("llama3.2"),
      prompt: "A long story, please",
      // Long enough (seconds at the simulator's pace) that the abort lands while it generates.
      maxOutputTokens: 20_000,
      abortSignal: controller.signal,
      providerOptions: { foreman: { metadata: { tag } } },
      onError: () => {},
    });
    for await (const part of result.fullStream) {
      if (part.type === "text-delta") {
        controller.abort();
        break;
      }
    }
    let jobId = "";
    for await (const job of client.listAll({ model: "llama3.2" })) {
      if (job.metadata?.tag === tag) jobId = job.id;
    }
    const ended = await client.wait(jobId, { timeoutMs: 15_000 });
    expect(ended.state).to.equal("canceled");
  });
});
