import { expect } from "chai";
import { Ollama } from "ollama";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { openDb } from "./db.js";
import { type Foreman, foreman, type Proc, stopAll } from "./harness.js";

const EMBEDDER = "nomic-embed-text:latest";
const CHAT_MODELS = ["llama3.2:latest", "qwen3:8b", "gemma3:4b"];

/** Resolves on the first simulator event that matches. */
function simEvent(sim: Simulator, test: (e: Parameters<Parameters<Simulator["on"]>[0]>[0]) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const off = sim.on((e) => {
      if (test(e)) {
        off();
        resolve();
      }
    });
  });
}

/** Starts a streamed chat and resolves once its first chunk arrived, with the rest still to read. */
async function startStream(url: string, body: Record<string, unknown>, signal?: AbortSignal) {
  const res = await fetch(`${url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ stream: true, ...body }),
    signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value);
  return {
    res,
    jobId: res.headers.get("x-foreman-job-id")!,
    async rest(): Promise<string[]> {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      return text.trimEnd().split("\n");
    },
  };
}

describe("e2e: durable queue, drain-by-model and faults", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;
  let worker: Proc;
  const embedLoadsAtStart = () => sim.stats().loads.byModel[EMBEDDER] ?? 0;

  before(async () => {
    sim = await startSimulator({ loadMs: 40, tokensPerSecond: 1000, maxLoadedModels: 2 });
    f = await foreman({
      ollamaUrl: sim.url,
      env: { FOREMAN_EMBED_MODEL: EMBEDDER, FOREMAN_POLL_MS: "200", FOREMAN_QUEUE_POLL_MS: "500" },
    });
    await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("embedder pinned");
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  const client = () => new Ollama({ host: f.url });

  it("drains 30 interleaved jobs across 3 models with no more loads than models + 1", async () => {
    const loadsBefore = { ...sim.stats().loads.byModel };
    // Keep the worker busy so the 30 pile up in the queue behind it.
    const busy = await startStream(f.url, {
      model: "gemma3:4b",
      messages: [{ role: "user", content: "busy" }],
      options: { num_predict: 300 },
    });
    const jobs = Array.from({ length: 30 }, (_, i) =>
      client().chat({
        model: CHAT_MODELS[i % 3]!,
        messages: [{ role: "user", content: `job ${i}` }],
        stream: false,
      }),
    );
    const answers = await Promise.all(jobs);
    await busy.rest();
    expect(answers.every((a) => a.done && a.message.content.length > 0)).to.equal(true);
    const loads = CHAT_MODELS.reduce((n, m) => n + (sim.stats().loads.byModel[m] ?? 0) - (loadsBefore[m] ?? 0), 0);
    expect(loads).to.be.at.most(CHAT_MODELS.length + 1);
    // The embedder stayed resident throughout: the worker unloads its own model before a switch.
    expect(sim.stats().evictions.byModel[EMBEDDER] ?? 0).to.equal(0);
  });

  it("serves 20 concurrent embeds during a long generation; the embedder is loaded once all run", async () => {
    // A generation far longer than the embeds can take however loaded the machine is (100 s): the embeds
    // must be answered while it still runs, not queued behind it. Its caller then leaves, which cancels it.
    const controller = new AbortController();
    const long = await startStream(
      f.url,
      { model: "llama3.2", messages: [{ role: "user", content: "long" }], options: { num_predict: 100_000 } },
      controller.signal,
    );
    let generationEnded = false;
    const off = sim.on((e) => {
      if (e.type === "request-end" && e.path === "/api/chat") generationEnded = true;
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client().embed({ model: EMBEDDER, input: `during ${i}` })),
      );
      expect(results.every((r) => r.embeddings.length === 1)).to.equal(true);
      expect(generationEnded, "the generation was still running when the embeds were answered").to.equal(false);
    } finally {
      off();
      controller.abort();
    }
    await worker.waitForLine((l) => l.includes(long.jobId) && l.includes('"job canceled"'));
    expect(embedLoadsAtStart()).to.equal(1);
  });

  it("a caller who disconnects mid-stream cancels the job and the target stops within a second", async () => {
    const controller = new AbortController();
    const stream = await startStream(
      f.url,
      { model: "llama3.2", messages: [{ role: "user", content: "cancel me" }], options: { num_predict: 5000 } },
      controller.signal,
    );
    const aborted = simEvent(sim, (e) => e.type === "abort" && e.path === "/api/chat");
    const t0 = Date.now();
    controller.abort();
    await aborted;
    expect(Date.now() - t0).to.be.lessThan(1000);
    await worker.waitForLine((l) => l.includes(stream.jobId) && l.includes('"job canceled"'));
    const db = openDb(f.dataDir);
    expect(db.job(stream.jobId)?.state).to.equal("canceled");
    db.close();
  });

  it("a caller who disconnects while queued cancels the job before it ever starts", async () => {
    const busy = await startStream(f.url, {
      model: "llama3.2",
      messages: [{ role: "user", content: "occupy" }],
      options: { num_predict: 600 },
    });
    const controller = new AbortController();
    const mark = f.gateway!.lines.length;
    const queued = fetch(`${f.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: "qwen3:8b", messages: [{ role: "user", content: "never runs" }] }),
      signal: controller.signal,
    }).catch(() => null);
    const line = await f.gateway!.waitForLine(
      (l) => l.includes('"job queued"') && l.includes('"model":"qwen3:8b"'),
      10_000,
      mark,
    );
    const created = JSON.parse(line) as { job_id: string };
    controller.abort();
    await queued;
    const canceled = await f.gateway!.waitForLine(
      (l) => l.includes(String(created?.job_id)) && l.includes('"job canceled"'),
    );
    expect(canceled).to.include("canceled before it started");
    await busy.rest();
    const db = openDb(f.dataDir);
    const job = db.job(String(created?.job_id));
    expect(job).to.include({ state: "canceled", attempts: 0, loading_at: null });
    db.close();
  });

  it("target lost mid-generation: the sync caller's stream ends with a final error line", async () => {
    sim.faults.dieMidStream({ afterChunks: 3, count: 1, pathPrefix: "/api/chat" });
    const res = await fetch(`${f.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({
        model: "llama3.2",
        messages: [{ role: "user", content: "die" }],
        options: { num_predict: 50 },
      }),
    });
    expect(res.status).to.equal(200);
    const lines = (await res.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.length).to.be.greaterThan(1);
    expect(lines.at(-1))
      .to.have.property("error")
      .that.matches(/target connection lost mid-generation/);
    expect(lines.slice(0, -1).every((l) => l.done === false)).to.equal(true);
  });

  it("target down for seconds: jobs wait, then run, with no attempt spent", async () => {
    await sim.faults.refuseConnections(2000);
    const pending = Array.from({ length: 3 }, (_, i) =>
      fetch(`${f.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", prompt: `wait ${i}`, stream: false }),
      }),
    );
    const answers = await Promise.all(pending);
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200]);
    const ids = answers.map((a) => a.headers.get("x-foreman-job-id")!);
    for (const id of ids) expect(await f.endedJob(id)).to.include({ state: "done", attempts: 1 });
    const db = openDb(f.dataDir);
    // No churn: a job bounces back to the queue at most once (when it, not the poller, found the target
    // gone), and then the worker waits for the target instead of claiming again.
    const bounces = ids.map(
      (id) => db.history(id).filter((h) => h.from_state === "loading" && h.to_state === "queued").length,
    );
    expect(bounces.reduce((a, b) => a + b, 0)).to.be.at.most(1);
    db.close();
    await worker.waitForLog("target down");
  });
});

describe("e2e: kill -9 of the worker mid-job", function () {
  this.timeout(60_000);
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 500 });
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("a sync caller gets a final NDJSON error line once a worker recovers the job", async () => {
    const f = await foreman({ ollamaUrl: sim.url });
    await f.startGateway();
    const first = f.startWorker({}, "worker-1");
    await first.waitForLog("active worker");
    const stream = await startStream(f.url, {
      model: "llama3.2",
      messages: [{ role: "user", content: "kill" }],
      options: { num_predict: 5000 },
    });
    await first.kill("SIGKILL");
    const second = f.startWorker({}, "worker-2");
    await second.waitForLog("recovered interrupted jobs");
    const lines = await stream.rest();
    expect(JSON.parse(lines.at(-1)!)).to.deep.equal({ error: "worker interrupted while the job was running" });
    expect((await f.endedJob(stream.jobId)).state).to.equal("failed");
  });

  it("a sync job whose caller has received nothing (killed while its model loads) is requeued and answered in full", async () => {
    const slow = await startSimulator({
      models: [{ name: "slowload:latest", loadMs: 3000, tokensPerSecond: 500, family: "llama" }],
    });
    try {
      const f = await foreman({ ollamaUrl: slow.url });
      await f.startGateway();
      const first = f.startWorker({}, "worker-1");
      await first.waitForLog("active worker");
      const loading = simEvent(slow, (e) => e.type === "load" && e.model.startsWith("slowload"));
      const answer = fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({ model: "slowload", messages: [{ role: "user", content: "load" }], stream: false }),
      });
      await loading;
      // The claim is committed just after the request reaches the target (ADR 0032): killed before it, the
      // job would simply still be queued. Its log line is written after the commit.
      await first.waitForLine((l) => l.includes('"job loading"'));
      await first.kill("SIGKILL");
      const second = f.startWorker({}, "worker-2");
      await second.waitForLog("recovered interrupted jobs");
      const res = await answer;
      expect(res.status).to.equal(200);
      expect(((await res.json()) as { done: boolean }).done).to.equal(true);
      const db = openDb(f.dataDir);
      expect(db.job(res.headers.get("x-foreman-job-id")!)).to.include({ state: "done", attempts: 2 });
      db.close();
    } finally {
      await slow.close();
    }
  });

  it("an async job is requeued with attempts + 1 and then completes", async () => {
    const f = await foreman({ ollamaUrl: sim.url });
    await f.startGateway();
    const first = f.startWorker({}, "worker-1");
    await first.waitForLog("active worker");
    const submitted = await fetch(`${f.url}/jobs`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "async", options: { num_predict: 1500 } }),
    });
    expect(submitted.status).to.equal(202);
    const job = (await submitted.json()) as { id: string };
    await first.waitForLine((l) => l.includes(job.id) && l.includes('"job working"'));
    await first.kill("SIGKILL");
    f.startWorker({}, "worker-2");
    expect(await f.endedJob(job.id)).to.include({ state: "done", attempts: 2 });
    const db = openDb(f.dataDir);
    expect(db.history(job.id).map((h) => h.to_state)).to.deep.equal([
      "queued",
      "loading",
      "working",
      "queued",
      "loading",
      "working",
      "done",
    ]);
    db.close();
  });
});

describe("e2e: no active worker", function () {
  this.timeout(30_000);
  it("a sync job waits in the queue, the gateway says the heartbeat is stale, and a worker that starts runs it", async () => {
    const sim = await startSimulator({ loadMs: 5, tokensPerSecond: 5000 });
    try {
      const f = await foreman({ ollamaUrl: sim.url });
      const gateway = await f.startGateway();
      const pending = fetch(`${f.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", prompt: "wait for a worker", stream: false }),
      });
      await gateway.waitForLog("no active worker");
      expect((await fetch(`${f.url}/readyz`)).status).to.equal(503);
      f.startWorker();
      const res = await pending;
      expect(res.status).to.equal(200);
      expect(((await res.json()) as { done: boolean }).done).to.equal(true);
    } finally {
      await stopAll();
      await sim.close();
    }
  });
});
