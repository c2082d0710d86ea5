import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { openDb } from "./db.js";
import { type Foreman, foreman, type Proc, stopAll } from "./harness.js";
import { startReceiver } from "./webhook-receiver.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

interface JobView {
  id: string;
  state: string;
  position?: number;
  attempts: number;
  result: { message?: { content: string }; response?: string } | null;
  metadata: Record<string, unknown> | null;
  metrics: Record<string, number> | null;
  artifacts: Array<{ name: string; content_type: string; size: number; url: string }>;
  webhook: { deliveries: Array<{ type: string; status: string; attempts: number }> } | null;
  error: string | null;
  cancel_requested?: boolean;
}

async function post(f: Foreman, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${f.url}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { res, body: (await res.json()) as JobView & { error?: string } };
}

async function getJob(f: Foreman, id: string, query = ""): Promise<JobView> {
  return (await (await fetch(`${f.url}/jobs/${id}${query}`)).json()) as JobView;
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "llama3.2",
  messages: [{ role: "user", content }],
  ...extra,
});

describe("e2e: async jobs, webhooks and artifacts", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;
  let worker: Proc;

  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 2000 });
    f = await foreman({
      ollamaUrl: sim.url,
      env: { FOREMAN_WEBHOOK_SECRET: SECRET, FOREMAN_INLINE_RESULT_MAX_BYTES: "100000" },
    });
    await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("active worker");
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("a job's webhooks arrive signed and in order; done carries the result; artifacts download", async () => {
    const receiver = await startReceiver(SECRET);
    try {
      const { res, body } = await post(
        f,
        chat("webhooks please", { webhook: { url: receiver.url }, metadata: { ticket: 7 } }),
      );
      expect(res.status).to.equal(202);
      expect(res.headers.get("location")).to.equal(`/jobs/${body.id}`);
      expect(res.headers.get("x-foreman-job-id")).to.equal(body.id);
      expect(body.metadata).to.deep.equal({ ticket: 7 });
      await receiver.until(() => receiver.accepted.some((e) => e.type === "job.done"));
      expect(receiver.invalid).to.deep.equal([]);
      expect(receiver.accepted.map((e) => e.type)).to.deep.equal([
        "job.queued",
        "job.loading",
        "job.working",
        "job.done",
      ]);
      const done = receiver.accepted.at(-1)!.body.data as unknown as JobView;
      expect(done.result?.message?.content.length).to.be.greaterThan(0);
      expect(done.artifacts.map((a) => a.name)).to.deep.equal(["result.json", "transcript.ndjson"]);

      const job = await getJob(f, body.id);
      expect(job.state).to.equal("done");
      expect(job.metrics?.eval_count).to.be.greaterThan(0);
      const result = await fetch(`${f.url}${job.artifacts[0]!.url}`);
      expect(result.headers.get("content-type")).to.match(/^application\/json/);
      expect(((await result.json()) as { message: { content: string } }).message.content).to.equal(
        job.result?.message?.content,
      );
      const transcript = await (await fetch(`${f.url}${job.artifacts[1]!.url}`)).text();
      const chunks = transcript
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(chunks.at(-1).done).to.equal(true);
      expect(chunks.map((c) => c.message.content).join("")).to.equal(job.result?.message?.content);
      expect(Buffer.byteLength(transcript)).to.equal(job.artifacts[1]!.size);
      // The transcript is cut from the relay when read, not stored a second time.
      expect(fs.readdirSync(path.join(f.dataDir, "artifacts", job.id))).to.deep.equal(["result.json"]);
      // The job shows its deliveries once the worker has recorded the receiver's acknowledgement of each
      // (in order per job, so the last one's record comes last; the harness runs foreman at debug level).
      await worker.waitForLine(
        (l) => l.includes('"webhook delivered"') && l.includes(body.id) && l.includes('"event":"job.done"'),
      );
      const shown = await getJob(f, body.id);
      expect(shown.webhook?.deliveries.map((d) => [d.type, d.status])).to.deep.equal([
        ["job.queued", "delivered"],
        ["job.loading", "delivered"],
        ["job.working", "delivered"],
        ["job.done", "delivered"],
      ]);
    } finally {
      await receiver.close();
    }
  });

  it("replays a finished job's stream, and follows a running one to its end", async () => {
    const { body } = await post(f, chat("stream me", { options: { num_predict: 30 } }));
    const stream = await fetch(`${f.url}/jobs/${body.id}/stream`);
    expect(stream.headers.get("content-type")).to.equal("application/x-ndjson");
    const lines = (await stream.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).to.have.length(31);
    expect(lines.at(-1).done).to.equal(true);
    const again = (await (await fetch(`${f.url}/jobs/${body.id}/stream`)).text()).trimEnd().split("\n");
    expect(again).to.have.length(31);
  });

  it("long poll returns when the job ends, or with the current state when the time passes", async () => {
    const { body } = await post(f, chat("poll me", { options: { num_predict: 50 } }));
    const waited = await getJob(f, body.id, "?wait=10");
    expect(waited.state).to.equal("done");
    const unknown = await fetch(`${f.url}/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV?wait=1`);
    expect(unknown.status).to.equal(404);
    const bad = await fetch(`${f.url}/jobs/${body.id}?wait=soon`);
    // A wait that is no number of seconds is the caller's error, whether or not the job has ended.
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: string }).error).to.match(/^wait must be a number of seconds/);
  });

  it("Idempotency-Key returns the first job for a repeated request and 409 for a different body", async () => {
    const key = `key-${Date.now()}`;
    const first = await post(f, chat("once"), { "Idempotency-Key": key });
    const second = await post(f, chat("once"), { "Idempotency-Key": key });
    expect(first.res.status).to.equal(202);
    expect(second.res.status).to.equal(200);
    expect(second.body.id).to.equal(first.body.id);
    const different = await post(f, chat("twice"), { "Idempotency-Key": key });
    expect(different.res.status).to.equal(409);
    expect(different.body.error).to.match(/already used with a different request body/);
  });

  it("cancel: queued and running jobs are canceled; an ended one answers 409", async () => {
    // A long job keeps the worker busy so the second one stays queued.
    const running = await post(f, chat("long", { options: { num_predict: 100_000 } }));
    await worker.waitForLine((l) => l.includes(running.body.id) && l.includes('"job working"'));
    const queued = await post(f, chat("queued", { model: "qwen3:8b" }));
    expect(queued.body.state).to.equal("queued");
    const second = await post(f, chat("queued behind", { model: "gemma3:4b" }));
    const third = await post(f, chat("queued too", { model: "qwen3:8b" }));
    // Drain-by-model order: the two qwen3 jobs run back to back, before the gemma3 job that came between.
    expect((await getJob(f, queued.body.id)).position).to.equal(1);
    expect((await getJob(f, third.body.id)).position).to.equal(2);
    expect((await getJob(f, second.body.id)).position).to.equal(3);
    // The queued list shows the same positions, counted for the page at once.
    const list = (await (await fetch(`${f.url}/jobs?state=queued`)).json()) as { jobs: JobView[] };
    expect(list.jobs.map((j) => [j.id, j.position])).to.deep.equal([
      [third.body.id, 2],
      [second.body.id, 3],
      [queued.body.id, 1],
    ]);
    for (const extra of [second, third]) await fetch(`${f.url}/jobs/${extra.body.id}/cancel`, { method: "POST" });

    const cancelQueued = await fetch(`${f.url}/jobs/${queued.body.id}/cancel`, { method: "POST" });
    expect(cancelQueued.status).to.equal(200);
    expect(((await cancelQueued.json()) as JobView).state).to.equal("canceled");

    const cancelRunning = await fetch(`${f.url}/jobs/${running.body.id}/cancel`, { method: "POST" });
    expect(cancelRunning.status).to.equal(200);
    const flagged = (await cancelRunning.json()) as JobView;
    expect(flagged.state === "canceled" || flagged.cancel_requested === true).to.equal(true);
    expect((await getJob(f, running.body.id, "?wait=5")).state).to.equal("canceled");

    const again = await fetch(`${f.url}/jobs/${queued.body.id}/cancel`, { method: "POST" });
    expect(again.status).to.equal(409);
    expect(((await again.json()) as { error: string }).error).to.match(/already ended \(canceled\)/);
    const missing = await fetch(`${f.url}/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel`, { method: "POST" });
    expect(missing.status).to.equal(404);
  });

  it("lists newest first, filtered by state and model, paged by cursor", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post(f, chat(`list ${i}`, { model: "gemma3:4b" }))).body.id);
    for (const id of ids) await getJob(f, id, "?wait=10");
    const page1 = (await (await fetch(`${f.url}/jobs?model=gemma3:4b&limit=2`)).json()) as {
      jobs: JobView[];
      next_cursor: string;
    };
    expect(page1.jobs.map((j) => j.id)).to.deep.equal([ids[4], ids[3]]);
    const page2 = (await (await fetch(`${f.url}/jobs?model=gemma3:4b&limit=2&cursor=${page1.next_cursor}`)).json()) as {
      jobs: JobView[];
      next_cursor: string;
    };
    expect(page2.jobs.map((j) => j.id)).to.deep.equal([ids[2], ids[1]]);
    const canceled = (await (await fetch(`${f.url}/jobs?state=canceled`)).json()) as { jobs: JobView[] };
    expect(canceled.jobs.length).to.be.greaterThan(0);
    expect(canceled.jobs.every((j) => j.state === "canceled")).to.equal(true);
    for (const [query, pattern] of [
      ["state=finished", /state must be one of/],
      ["limit=0", /limit must be an integer from 1 to 100/],
      ["cursor=zzz", /cursor is not valid/],
    ] as const) {
      const res = await fetch(`${f.url}/jobs?${query}`);
      expect(res.status, query).to.equal(400);
      expect(((await res.json()) as { error: string }).error).to.match(pattern);
    }
  });

  it("refuses the bad bodies users send with a 4xx naming the field, storing nothing", async () => {
    const db = openDb(f.dataDir);
    const before = db.count();
    const cases: Array<[unknown, RegExp]> = [
      [{ messages: [{ role: "user", content: "x" }] }, /model is required/],
      [{ model: 7, prompt: "x" }, /model must be a string/],
      [{ model: "llama3.2" }, /one of messages \(chat\) or prompt \(generate\) is required/],
      [{ model: "llama3.2", prompt: "x", messages: [] }, /exactly one of messages \(chat\) or prompt/],
      [{ model: "llama3.2", messages: "hi" }, /messages must be an array/],
      [{ model: "llama3.2", prompt: "x", webhook: { url: "ftp://example.com/x" } }, /webhook\.url must be a valid uri/],
      [{ model: "llama3.2", prompt: "x", webhook: { url: "http://127.0.0.1/x", secret: "nope" } }, /webhook\.secret/],
      [
        { model: "llama3.2", prompt: "x", webhook: { url: "http://127.0.0.1/x", events: ["job.exploded"] } },
        /webhook\.events\[0\]/,
      ],
      [{ model: "llama3.2", prompt: "x", options: "fast" }, /options must be of type object/],
      [[1, 2], /JSON object/],
    ];
    for (const [body, pattern] of cases) {
      const res = await fetch(`${f.url}/jobs`, { method: "POST", body: JSON.stringify(body) });
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(body)).to.match(pattern);
    }
    const broken = await fetch(`${f.url}/jobs`, { method: "POST", body: "{oops" });
    expect(broken.status).to.equal(400);
    expect(db.count()).to.equal(before);
    db.close();
  });

  it("artifact names that try to leave the job's folder are refused", async () => {
    const { body } = await post(f, chat("artifacts"));
    await getJob(f, body.id, "?wait=10");
    for (const name of ["..%2F..%2Fforeman.db", "%2Fetc%2Fpasswd", ".hidden", "nope.json"]) {
      const res = await fetch(`${f.url}/jobs/${body.id}/artifacts/${name}`);
      expect(res.status, name).to.be.oneOf([400, 404]);
      expect(((await res.json()) as { error: string }).error).to.be.a("string");
    }
  });
});
