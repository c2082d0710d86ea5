import { ChatOllama } from "@langchain/ollama";
import { expect } from "chai";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { openDb } from "./db.js";
import { type Foreman, foreman, type LogLine, type Proc, stopAll } from "./harness.js";
import { startReceiver } from "./webhook-receiver.js";

const SECRET = `whsec_${Buffer.from("a-webhook-secret-of-32-bytes-len").toString("base64")}`;
const MODEL = "llama3.2";

/** A job that keeps the worker busy: a slow, long generation submitted as an async job. */
async function submitBlocker(f: Foreman, tokens = 60): Promise<string> {
  const res = await fetch(`${f.url}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt: "block the worker", options: { num_predict: tokens } }),
  });
  expect(res.status).to.equal(202);
  return ((await res.json()) as { id: string }).id;
}

/** Resolves once the job has reached `state` (long poll on the jobs API, bounded). */
async function waitForState(f: Foreman, id: string, states: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${f.url}/jobs/${id}`);
    const job = (await res.json()) as { state: string };
    if (states.includes(job.state)) return;
    if (["done", "failed", "canceled"].includes(job.state)) throw new Error(`job ${id} ended ${job.state}`);
    await fetch(`${f.url}/jobs/${id}?wait=0.2`);
  }
  throw new Error(`job ${id} never reached ${states.join("/")}`);
}

const messagesBetween = (proc: Proc, from: string, to: string): LogLine[] => {
  const logs = proc.logs();
  const start = logs.findLastIndex((l) => l.message === from);
  const end = logs.findIndex((l, i) => i > start && l.message === to);
  return logs.slice(start, end < 0 ? undefined : end);
};

describe("e2e: a sleeping target", function () {
  this.timeout(60_000);
  let sim: Simulator;

  beforeEach(async () => {
    sim = await startSimulator({ loadMs: 20, tokensPerSecond: 200 });
  });
  afterEach(async () => {
    await stopAll();
    await sim.close();
  });

  async function start(env: NodeJS.ProcessEnv = {}) {
    const f = await foreman({
      ollamaUrl: sim.url,
      env: { FOREMAN_POLL_MS: "200", FOREMAN_QUEUE_POLL_MS: "100", FOREMAN_TARGET_DOWN_PROBE_MAX_MS: "300", ...env },
    });
    await f.startGateway();
    const worker = f.startWorker();
    await worker.waitForLog("target up");
    return { f, worker };
  }

  it("no churn while it sleeps: each webhook sees queued, then loading, working, done once; no switch is logged", async () => {
    const { f, worker } = await start();
    const receiver = await startReceiver(SECRET);
    try {
      await sim.faults.refuseConnections(60_000);
      await worker.waitForLog("target down");
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${f.url}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: MODEL,
            prompt: `asleep ${i}`,
            webhook: { url: receiver.url, secret: SECRET },
          }),
        });
        expect(res.status).to.equal(202);
        ids.push(((await res.json()) as { id: string }).id);
      }
      await receiver.until(() => receiver.accepted.filter((e) => e.type === "job.queued").length === 3);
      // The outage itself is the stimulus: with a 100 ms queue poll and 300 ms probes, a worker that
      // churned would have claimed each job many times over in this window.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(receiver.accepted.map((e) => e.type)).to.deep.equal(["job.queued", "job.queued", "job.queued"]);

      const mark = worker.lines.length;
      await sim.faults.clear();
      const up = await worker.waitForLog("target up", 10_000, mark);
      expect(up.down_for_ms).to.be.a("number").that.is.at.least(2000);
      await receiver.until(() => receiver.accepted.filter((e) => e.type === "job.done").length === 3);

      for (const id of ids) {
        const types = receiver.accepted.filter((e) => e.jobId === id).map((e) => e.type);
        expect(types).to.deep.equal(["job.queued", "job.loading", "job.working", "job.done"]);
      }
      const db = openDb(f.dataDir);
      for (const id of ids) {
        const moves = db.history(id).map((h) => `${h.from_state}>${h.to_state}`);
        expect(moves).to.deep.equal(["null>queued", "queued>loading", "loading>working", "working>done"]);
        expect(db.job(id)).to.include({ state: "done", attempts: 1 });
      }
      db.close();
      const duringOutage = messagesBetween(worker, "target down", "target up");
      expect(duringOutage.filter((l) => l.message === "model switch")).to.deep.equal([]);
    } finally {
      await receiver.close();
    }
  });

  it("a job that finds the target gone at claim time goes back to the queue once, then waits", async () => {
    // A slow poll: the worker learns of the outage from the job, not from the poller.
    const { f, worker } = await start({ FOREMAN_POLL_MS: "60000" });
    await sim.faults.refuseConnections(60_000);
    const res = await fetch(`${f.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "finds it gone" }),
    });
    const { id } = (await res.json()) as { id: string };
    await worker.waitForLog("target down");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const mark = worker.lines.length;
    await sim.faults.clear();
    await worker.waitForLog("target up", 10_000, mark);
    await waitForState(f, id, ["done"]);
    const db = openDb(f.dataDir);
    const moves = db.history(id).map((h) => `${h.from_state}>${h.to_state}`);
    expect(moves).to.deep.equal([
      "null>queued",
      "queued>loading",
      "loading>queued",
      "queued>loading",
      "loading>working",
      "working>done",
    ]);
    expect(db.job(id)).to.include({ attempts: 1 });
    db.close();
  });

  it("a synchronous chat with the target down gets a 503 naming the outage within its wait limit; the job is canceled", async () => {
    const { f, worker } = await start({ FOREMAN_SYNC_WAIT_MS: "800" });
    await sim.faults.refuseConnections(60_000);
    await worker.waitForLog("target down");
    const res = await fetch(`${f.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hello?" }] }),
    });
    expect(res.status).to.equal(503);
    const body = (await res.json()) as { error: string };
    expect(body.error).to.match(/Ollama target is unreachable \(last seen .*\); job \w+ did not start within 1 s/);
    const id = res.headers.get("x-foreman-job-id")!;
    const db = openDb(f.dataDir);
    expect(db.job(id)?.state).to.equal("canceled");
    db.close();
  });

  it("a synchronous caller behind a running job gets a 504 with its place in the queue", async () => {
    const { f } = await start({ FOREMAN_SYNC_WAIT_MS: "500" });
    const blocker = await submitBlocker(f, 400);
    await waitForState(f, blocker, ["working"]);
    const res = await fetch(`${f.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: "waiting", stream: false }),
    });
    expect(res.status).to.equal(504);
    expect(((await res.json()) as { error: string }).error).to.match(/number 1 in the queue/);
    const db = openDb(f.dataDir);
    expect(db.job(res.headers.get("x-foreman-job-id")!)?.state).to.equal("canceled");
    db.close();
  });
});

describe("e2e: the early answer for callers with short header timeouts", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;
  let worker: Proc;

  before(async () => {
    sim = await startSimulator({ loadMs: 20, tokensPerSecond: 100 });
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_SYNC_KEEPALIVE_MS: "50", FOREMAN_POLL_MS: "200" } });
    await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("target up");
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("headers with the job id and position arrive at once, then empty chunks while it waits", async () => {
    const blocker = await submitBlocker(f);
    await waitForState(f, blocker, ["working"]);
    const res = await fetch(`${f.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "raw" }] }),
    });
    expect(res.status).to.equal(200);
    const id = res.headers.get("x-foreman-job-id")!;
    expect(res.headers.get("x-foreman-queue-position")).to.equal("1");
    // The headers came while the job was still waiting behind the blocker.
    const db = openDb(f.dataDir);
    expect(db.job(id)?.state).to.equal("queued");
    db.close();
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { message?: { content: string }; done: boolean });
    expect(lines[0]).to.include({ done: false });
    expect(lines[0]!.message).to.deep.equal({ role: "assistant", content: "" });
    expect(lines.at(-1)!.done).to.equal(true);
  });

  it("ollama-js, LangChain and openai read through the wait and get the same answer as without it", async () => {
    const messages = [{ role: "user" as const, content: "the same answer" }];
    const direct = new Ollama({ host: sim.url });
    const expected = (await direct.chat({ model: MODEL, messages })).message.content;
    const expectedGenerate = (await direct.generate({ model: MODEL, prompt: "generate it" })).response;

    const blocker = await submitBlocker(f, 100);
    await waitForState(f, blocker, ["working"]);
    const ollama = new Ollama({ host: f.url });
    const openai = new OpenAI({ baseURL: `${f.url}/v1`, apiKey: "unused" });
    const collect = async (stream: AsyncIterable<{ message: { content: string } }>) => {
      let text = "";
      for await (const part of stream) text += part.message.content;
      return text;
    };
    const [streamed, whole, generated, lang, oaStream, oaWhole] = await Promise.all([
      ollama.chat({ model: MODEL, messages, stream: true }).then(collect),
      ollama.chat({ model: MODEL, messages }).then((r) => r.message.content),
      ollama.generate({ model: MODEL, prompt: "generate it" }).then((r) => r.response),
      new ChatOllama({ baseUrl: f.url, model: MODEL }).invoke(messages).then((m) => String(m.content)),
      openai.chat.completions.create({ model: MODEL, messages, stream: true }).then(async (stream) => {
        let text = "";
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
        return text;
      }),
      openai.chat.completions.create({ model: MODEL, messages }).then((r) => r.choices[0]!.message.content),
    ]);
    expect(streamed).to.equal(expected);
    expect(whole).to.equal(expected);
    expect(generated).to.equal(expectedGenerate);
    expect(lang).to.equal(expected);
    expect(oaStream).to.equal(expected);
    expect(oaWhole).to.equal(expected);
  });

  it("with the target down past the wait limit, the clients get a final error", async () => {
    const g = await foreman({
      ollamaUrl: sim.url,
      env: {
        FOREMAN_SYNC_KEEPALIVE_MS: "50",
        FOREMAN_SYNC_WAIT_MS: "600",
        FOREMAN_POLL_MS: "200",
        FOREMAN_TARGET_DOWN_PROBE_MAX_MS: "300",
      },
    });
    await g.startGateway();
    const w = g.startWorker({}, "worker-g");
    await w.waitForLog("target up");
    await sim.faults.refuseConnections(60_000);
    try {
      await w.waitForLog("target down");
      const ollama = new Ollama({ host: g.url });
      const messages = [{ role: "user" as const, content: "are you there" }];
      let streamError: Error | null = null;
      try {
        for await (const _ of await ollama.chat({ model: MODEL, messages, stream: true })) {
          // Empty keep-alive chunks until the limit.
        }
      } catch (err) {
        streamError = err as Error;
      }
      expect(streamError?.message).to.match(/Ollama target is unreachable/);
      const openai = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "unused", maxRetries: 0 });
      let sseError: Error | null = null;
      try {
        for await (const _ of await openai.chat.completions.create({ model: MODEL, messages, stream: true })) {
          // Empty keep-alive chunks until the limit.
        }
      } catch (err) {
        sseError = err as Error;
      }
      expect(sseError?.message).to.match(/Ollama target is unreachable/);
    } finally {
      await sim.faults.clear();
    }
  });
});
