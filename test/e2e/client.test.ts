import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import express from "express";
import {
  type ChatResponse,
  ForemanClient,
  JobFailedError,
  JobRestartedError,
  type VerifiedWebhookRequest,
  type WebhookEvent,
  webhookMiddleware,
  webhookReader,
} from "../../packages/client/src/index.js";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { startCuttingProxy } from "./cutting-proxy.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

const TOKEN = "client-e2e-token-0123456789";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EVENTS = ["job.queued", "job.loading", "job.working", "job.done"];

/** The chat requests the simulator has answered so far. */
const chatCalls = (sim: Simulator) => sim.stats().requests.byRoute["POST /api/chat"] ?? 0;

/** Resolves when `test` holds, checked each time `notify` is called (a receiver's events, a stream's chunks). */
function whenTrue<T>(test: () => T | undefined, timeoutMs = 15_000, what = "a condition") {
  let check = () => {};
  const promise = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    check = () => {
      const value = test();
      if (value === undefined) return;
      clearTimeout(timer);
      resolve(value);
    };
  });
  check();
  return { promise, notify: () => check() };
}

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

  it("chatStream through a proxy that cuts the stream twice mid-way: every chunk exactly once, and one job ran", async () => {
    const proxy = await startCuttingProxy({
      targetPort: f.port,
      match: /^GET \/jobs\/[^/]+\/stream/,
      cuts: 2,
      cutAfterBodyBytes: 300,
    });
    try {
      const viaProxy = new ForemanClient({
        baseUrl: proxy.url,
        token: TOKEN,
        retry: { minDelayMs: 10, maxDelayMs: 50 },
      });
      const callsBefore = chatCalls(sim);
      const tag = randomUUID();
      let jobId = "";
      const chunks: ChatResponse[] = [];
      for await (const chunk of viaProxy.chatStream("llama3.2", [{ role: "user", content: "cut me off" }], {
        options: { num_predict: 60 },
        metadata: { tag },
        onJob: (job) => {
          jobId = job.id;
        },
      })) {
        chunks.push(chunk);
      }

      expect(proxy.cutCount).to.equal(2);
      const streams = proxy.requests.filter((line) => line.startsWith("GET /jobs/"));
      expect(streams).to.have.length(3);
      // Each reattach asks for what follows the chunks already received, of the same attempt.
      const afters = streams.map((line) => Number(/after=(\d+)/.exec(line)?.[1]));
      expect(afters[0]).to.equal(0);
      expect(afters[1]).to.be.greaterThan(0);
      expect(afters[2]).to.be.greaterThan(afters[1]!);
      expect(streams.slice(1).every((line) => line.includes("&attempt=1 "))).to.equal(true);
      const transcript = (await client.artifactText(jobId, "transcript.ndjson"))
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line) as ChatResponse);
      expect(chunks).to.deep.equal(transcript);
      expect(chunks.at(-1)?.done).to.equal(true);
      const job = await client.get(jobId);
      expect(chunks.map((c) => c.message.content).join("")).to.equal((job.result as ChatResponse).message.content);
      // One job, generated once.
      const tagged = [];
      for await (const listed of client.listAll({ model: "llama3.2", limit: 100 })) {
        if (listed.metadata?.tag === tag) tagged.push(listed.id);
      }
      expect(tagged).to.deep.equal([jobId]);
      expect(job.attempts).to.equal(1);
      expect(chatCalls(sim) - callsBefore).to.equal(1);
    } finally {
      await proxy.close();
    }
  });

  it("webhooks: foreman's real deliveries pass the Express middleware and the Node http reader", async () => {
    const received: Array<{ via: string; id: string; event: WebhookEvent }> = [];
    const bothDone = whenTrue(
      () => (received.filter((r) => r.event.type === "job.done").length === 2 ? true : undefined),
      15_000,
      "job.done at both receivers",
    );
    const app = express();
    app.post("/hooks", express.raw({ type: "application/json" }), webhookMiddleware(SECRET), (req, res) => {
      const { webhookEvent, webhookId } = req as unknown as VerifiedWebhookRequest;
      received.push({ via: "express", id: webhookId, event: webhookEvent });
      res.status(204).end();
      bothDone.notify();
    });
    const receive = webhookReader(SECRET);
    const servers = [
      http.createServer(app),
      http.createServer((req, res) => {
        receive(req).then(
          (event) => {
            received.push({ via: "node", id: String(req.headers["webhook-id"]), event });
            res.writeHead(204).end();
            bothDone.notify();
          },
          () => res.writeHead(400).end(),
        );
      }),
    ];
    const urls: string[] = [];
    for (const server of servers) {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
    try {
      const viaExpress = await client.submit({
        model: "llama3.2",
        prompt: "hook me",
        webhook: { url: `${urls[0]}/hooks`, secret: SECRET },
      });
      const viaNode = await client.submit({
        model: "llama3.2",
        prompt: "hook me too",
        webhook: { url: urls[1]!, secret: SECRET },
      });
      await bothDone.promise;
      for (const [via, job] of [
        ["express", viaExpress],
        ["node", viaNode],
      ] as const) {
        const events = received.filter((r) => r.via === via).map((r) => r.event);
        expect(events.map((e) => e.type)).to.deep.equal(EVENTS);
        expect(events.map((e) => e.data.id)).to.deep.equal(EVENTS.map(() => job.id));
        expect(events.map((e) => e.data.state)).to.deep.equal(["queued", "loading", "working", "done"]);
        expect(events.at(-1)?.data.result).to.not.equal(null);
      }
      expect(new Set(received.map((r) => r.id)).size).to.equal(received.length);
    } finally {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    }
  });

  it("embed() answers from the target past the queue, one vector per input", async () => {
    const { embeddings, model } = await client.embed({ model: "nomic-embed-text", input: ["one", "two"] });
    expect(model).to.match(/^nomic-embed-text/);
    expect(embeddings).to.have.length(2);
    expect(embeddings[0]!.length).to.be.greaterThan(0).and.equal(embeddings[1]!.length);
    expect(embeddings[0]).to.not.deep.equal(embeddings[1]);
  });

  it("a wrong token is a 401 whose message does not contain any token", async () => {
    const wrong = new ForemanClient({ baseUrl: f.url, token: "not-the-right-token-000" });
    const error = (await wrong.list().catch((e: unknown) => e)) as { status: number; message: string };
    expect(error.status).to.equal(401);
    expect(error.message).to.not.include(TOKEN).and.not.include("not-the-right-token-000");
  });

  // Last: it stops and restarts the suite's worker.
  it("a job whose attempt is cut short after chunks were delivered ends the stream with JobRestartedError; the job goes on", async () => {
    // The stream is attached while no worker runs, so it is known to follow the job's first attempt.
    await f.worker!.kill("SIGTERM");
    let streamOpened = false;
    const attached = whenTrue(() => (streamOpened ? true : undefined), 10_000, "the stream to be attached");
    const watching = new ForemanClient({
      baseUrl: f.url,
      token: TOKEN,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (String(input).includes("/stream")) {
          streamOpened = true;
          attached.notify();
        }
        return response;
      },
    });
    let jobId = "";
    const chunks: ChatResponse[] = [];
    const reading = (async () => {
      for await (const chunk of watching.chatStream("llama3.2", [{ role: "user", content: "interrupt me" }], {
        options: { num_predict: 40 },
        onJob: (job) => {
          jobId = job.id;
        },
      })) {
        chunks.push(chunk);
      }
    })().then(
      () => null,
      (error: unknown) => error,
    );
    await attached.promise;
    // The target drops the first answer after three chunks: the worker requeues the job, which answers anew.
    sim.faults.dieMidStream({ afterChunks: 3, count: 1, pathPrefix: "/api/chat" });
    await f.startWorker().waitForLog("active worker", 15_000, 0);

    const error = await reading;
    expect(error).to.be.instanceOf(JobRestartedError);
    expect(error).to.include({ jobId, attempt: 1, currentAttempt: 2, chunksReceived: 3 });
    expect(chunks).to.have.length(3);
    const job = await client.wait(jobId, { timeoutMs: 20_000 });
    expect(job.state).to.equal("done");
    expect(job.attempts).to.equal(2);
    // The new attempt read from its start is the whole answer.
    const fresh: ChatResponse[] = [];
    for await (const chunk of client.follow<ChatResponse>(jobId)) fresh.push(chunk);
    expect(fresh.map((c) => c.message.content).join("")).to.equal((job.result as ChatResponse).message.content);
  });
});
