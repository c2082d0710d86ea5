import { expect } from "chai";
import { IllegalTransitionError } from "../../src/errors.js";
import { openStore, type Store } from "../../src/store/store.js";
import { LeaseLostError } from "../../src/store/worker-lease.js";
import { fakeClock, tempDbPath } from "./helpers.js";

const chat = {
  kind: "chat" as const,
  api: "ollama" as const,
  mode: "async" as const,
  model: "llama3.2",
  request: { model: "llama3.2", messages: [] },
};

describe("store/transitions", () => {
  let store: Store;
  const clock = fakeClock();
  beforeEach(() => {
    store = openStore({ dbPath: tempDbPath(), now: clock.now });
  });
  afterEach(() => store.close());

  it("commits a new job as queued with its history row", () => {
    const job = store.transitions.createJob(chat);
    expect(job.state).to.equal("queued");
    expect(job.id).to.match(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(job.queuedAt).to.equal(clock.now());
    expect(store.transitions.history(job.id)).to.deep.equal([
      { from_state: null, to_state: "queued", attempt: 0, reason: null, at: clock.now() },
    ]);
    expect(store.jobs.get(job.id)).to.deep.equal(job);
    // The record returned is made from what was inserted, not read back: it must be what a read returns.
    const full = store.transitions.createJobs([
      {
        ...chat,
        request: { model: "llama3.2", messages: [{ role: "user", content: "hi" }], options: { num_ctx: 8192 } },
        metadata: { batch: 7, tags: ["a"] },
        webhook: {
          url: "https://example.test/hook",
          secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
          events: ["job.done"],
        },
        idempotencyKey: "k",
        requestHash: "h",
      },
    ])[0]!;
    expect(store.jobs.get(full.id)).to.deep.equal(full);
  });

  it("records each transition with its timestamp, attempt and patch", () => {
    const job = store.transitions.createJob(chat);
    clock.advance(10);
    store.transitions.transition(job.id, "loading", { incrementAttempts: true });
    clock.advance(10);
    store.transitions.transition(job.id, "working");
    clock.advance(10);
    const done = store.transitions.transition(job.id, "done", { result: { ok: 1 }, metrics: { eval_count: 3 } });
    expect(done).to.include({ state: "done", attempts: 1 });
    expect(done.loadingAt! - done.queuedAt!).to.equal(10);
    expect(done.endedAt! - done.workingAt!).to.equal(10);
    expect(done.result).to.deep.equal({ ok: 1 });
    expect(done.metrics).to.deep.equal({ eval_count: 3 });
    expect(store.transitions.history(job.id).map((h) => `${h.from_state}>${h.to_state}@${h.attempt}`)).to.deep.equal([
      "null>queued@0",
      "queued>loading@1",
      "loading>working@1",
      "working>done@1",
    ]);
  });

  it("refuses an illegal transition and leaves the job and its history untouched", () => {
    const job = store.transitions.createJob(chat);
    expect(() => store.transitions.transition(job.id, "done")).to.throw(IllegalTransitionError);
    expect(store.jobs.get(job.id)!.state).to.equal("queued");
    expect(store.transitions.history(job.id)).to.have.length(1);
  });

  it("writes one outbox row per state entered, filtered by the job's events, in the same transaction", () => {
    const job = store.transitions.createJob({
      ...chat,
      webhook: { url: "http://127.0.0.1:1/hook", events: ["job.queued", "job.done"] },
    });
    store.transitions.transition(job.id, "loading", { incrementAttempts: true });
    store.transitions.transition(job.id, "working");
    store.transitions.transition(job.id, "done", { result: "hi" });
    const rows = store.db
      .prepare("SELECT event_type, payload, status, event_id FROM webhook_outbox WHERE job_id = ? ORDER BY id")
      .all(job.id) as Array<{ event_type: string; payload: string; status: string; event_id: string }>;
    expect(rows.map((r) => r.event_type)).to.deep.equal(["job.queued", "job.done"]);
    const done = JSON.parse(rows[1]!.payload);
    expect(done.type).to.equal("job.done");
    expect(done.data).to.include({ id: job.id, state: "done", result: "hi" });
    expect(rows.every((r) => r.status === "pending" && r.event_id.startsWith("msg_"))).to.equal(true);
  });

  it("writes no outbox row for a job without a webhook", () => {
    const job = store.transitions.createJob(chat);
    store.transitions.transition(job.id, "canceled");
    expect(store.db.prepare("SELECT COUNT(*) AS n FROM webhook_outbox").get()).to.deep.equal({ n: 0 });
  });

  it("deleting a job removes its history and outbox rows", () => {
    const job = store.transitions.createJob({ ...chat, webhook: { url: "http://127.0.0.1:1/h" } });
    store.db.prepare("DELETE FROM jobs WHERE id = ?").run(job.id);
    expect(store.db.prepare("SELECT COUNT(*) AS n FROM job_transitions").get()).to.deep.equal({ n: 0 });
    expect(store.db.prepare("SELECT COUNT(*) AS n FROM webhook_outbox").get()).to.deep.equal({ n: 0 });
  });
});

describe("store/transitions: requeue", () => {
  it("requeues a running job, but cancels it when its cancel was requested meanwhile", () => {
    const store = openStore({ dbPath: tempDbPath() });
    const make = () => {
      const job = store.transitions.createJob(chat);
      store.transitions.transition(job.id, "loading", { incrementAttempts: true });
      return job.id;
    };
    const plain = make();
    expect(store.transitions.requeue(plain, { refundAttempt: true }).state).to.equal("queued");
    expect(store.jobs.get(plain)?.attempts).to.equal(0);
    const flagged = make();
    expect(store.transitions.requestCancel(flagged).outcome).to.equal("requested");
    expect(store.transitions.requeue(flagged, { refundAttempt: true }).state).to.equal("canceled");
    store.close();
  });

  it("stores the model under its normalized name, so tagless and :latest jobs drain together", () => {
    const store = openStore({ dbPath: tempDbPath() });
    const a = store.transitions.createJob({ ...chat, model: "llama3.2" });
    const b = store.transitions.createJob({ ...chat, model: "llama3.2:latest" });
    const c = store.transitions.createJob({ ...chat, model: "registry.example/team/model:v1" });
    expect([a.model, b.model, c.model]).to.deep.equal([
      "llama3.2:latest",
      "llama3.2:latest",
      "registry.example/team/model:v1",
    ]);
    expect(a.request.model).to.equal("llama3.2");
    store.close();
  });
});

describe("store/transitions: the worker lease guard", () => {
  it("refuses a worker's move once another worker holds the lease, writing nothing", () => {
    const store = openStore({ dbPath: tempDbPath() });
    store.workerLease.tryAcquire({ workerId: "w1", pid: 1, hostname: "h" });
    const job = store.transitions.createJob(chat);
    const w1 = store.transitions.forWorker("w1");
    w1.transition(job.id, "loading", { incrementAttempts: true });
    // w1 stalls; w2 takes over the lease (stale takeover is the lease store's business, simulated here).
    store.db.prepare("UPDATE worker_lease SET worker_id = 'w2'").run();
    expect(() => w1.transition(job.id, "working")).to.throw(LeaseLostError);
    expect(() => w1.requeue(job.id)).to.throw(LeaseLostError);
    expect(store.jobs.get(job.id)?.state).to.equal("loading");
    expect(store.transitions.forWorker("w2").transition(job.id, "working").state).to.equal("working");
    store.close();
  });
});
