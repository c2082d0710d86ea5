import { expect } from "chai";
import { createOutboxStore, type OutboxStore } from "../../src/store/outbox.js";
import { openStore, type Store } from "../../src/store/store.js";
import { fakeClock, tempDbPath } from "./helpers.js";

const chat = { kind: "chat" as const, api: "ollama" as const, mode: "async" as const, model: "m", request: {} };

describe("store/outbox", () => {
  let store: Store;
  let outbox: OutboxStore;
  let clock: ReturnType<typeof fakeClock>;

  beforeEach(() => {
    clock = fakeClock();
    store = openStore({ dbPath: tempDbPath(), now: clock.now });
    outbox = createOutboxStore(store.db, { now: clock.now });
  });
  afterEach(() => store.close());

  /** A job with a webhook that has gone queued → loading → working: three outbox rows, one ms apart. */
  function jobWithThreeEvents(webhook: { url: string; secret?: string } = { url: "http://127.0.0.1:1/hook" }) {
    const job = store.transitions.createJob({ ...chat, webhook });
    clock.advance(1);
    store.transitions.transition(job.id, "loading", { incrementAttempts: true });
    clock.advance(1);
    store.transitions.transition(job.id, "working");
    clock.advance(1);
    return job;
  }

  it("offers only the oldest pending event of each job, with the job's secret", () => {
    const a = jobWithThreeEvents({ url: "http://127.0.0.1:1/a", secret: "whsec_YWFh" });
    const b = jobWithThreeEvents({ url: "http://127.0.0.1:1/b" });
    const due = outbox.dueDeliveries(10, clock.now());
    expect(due.map((d) => [d.job_id, d.type, d.url, d.webhook_secret, d.attempts])).to.deep.equal([
      [a.id, "job.queued", "http://127.0.0.1:1/a", "whsec_YWFh", 0],
      [b.id, "job.queued", "http://127.0.0.1:1/b", null, 0],
    ]);
    const first = due[0]!;
    expect(first.event_id).to.match(/^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(JSON.parse(first.payload)).to.include({ type: "job.queued" });
    expect(
      outbox.dueDeliveries(1, clock.now()).map((d) => d.job_id),
      "limit",
    ).to.deep.equal([a.id]);
  });

  it("holds a job's later events back while its earlier event waits for a retry", () => {
    const job = jobWithThreeEvents();
    const [queued] = outbox.dueDeliveries(10, clock.now());
    expect(outbox.scheduleRetry(queued!.id, { status: 500, error: "HTTP 500", nextAttemptAt: clock.now() + 1000 })).to
      .be.true;
    // job.loading and job.working are past their own next_attempt_at, yet nothing of this job is due.
    expect(outbox.dueDeliveries(10, clock.now())).to.deep.equal([]);
    expect(outbox.nextDueAt(), "the head's retry time, not a held-back row's").to.equal(clock.now() + 1000);
    clock.advance(1000);
    expect(outbox.dueDeliveries(10, clock.now()).map((d) => [d.type, d.attempts])).to.deep.equal([["job.queued", 1]]);
    expect(outbox.markDelivered(queued!.id, 204, clock.now())).to.be.true;
    expect(outbox.dueDeliveries(10, clock.now()).map((d) => d.type)).to.deep.equal(["job.loading"]);
    expect(outbox.deliveriesForJob(job.id).map((d) => d.status)).to.deep.equal(["delivered", "pending", "pending"]);
  });

  it("lets the next event go once an earlier one is given up", () => {
    jobWithThreeEvents();
    const [queued] = outbox.dueDeliveries(10, clock.now());
    expect(outbox.markGivenUp(queued!.id, { status: null, error: "timed out", at: clock.now() })).to.be.true;
    expect(outbox.dueDeliveries(10, clock.now()).map((d) => d.type)).to.deep.equal(["job.loading"]);
  });

  it("settles a row once: outcome updates on a row that is no longer pending change nothing", () => {
    const job = jobWithThreeEvents();
    const [queued] = outbox.dueDeliveries(10, clock.now());
    expect(outbox.markDelivered(queued!.id, 200, clock.now())).to.be.true;
    expect(outbox.markDelivered(queued!.id, 200, clock.now())).to.be.false;
    expect(outbox.scheduleRetry(queued!.id, { status: 500, error: "x", nextAttemptAt: 0 })).to.be.false;
    expect(outbox.markGivenUp(queued!.id, { status: 500, error: "x", at: 0 })).to.be.false;
    expect(outbox.deliveriesForJob(job.id)[0]).to.include({ status: "delivered", attempts: 1, last_status: 200 });
  });

  it("reports the earliest due head, optionally only after a given time", () => {
    expect(outbox.nextDueAt()).to.equal(null);
    const created = clock.now();
    jobWithThreeEvents();
    expect(outbox.nextDueAt()).to.equal(created);
    expect(outbox.nextDueAt(created), "strictly after").to.equal(null);
    const [queued] = outbox.dueDeliveries(10, clock.now());
    outbox.scheduleRetry(queued!.id, { status: null, error: "ECONNREFUSED", nextAttemptAt: created + 5000 });
    expect(outbox.nextDueAt(created)).to.equal(created + 5000);
  });

  it("shows a job's deliveries in event order with attempts, last status and times", () => {
    const job = jobWithThreeEvents();
    const [queued] = outbox.dueDeliveries(10, clock.now());
    const t0 = clock.now();
    outbox.scheduleRetry(queued!.id, { status: 503, error: "HTTP 503", nextAttemptAt: t0 + 1000 });
    clock.advance(1000);
    outbox.markDelivered(queued!.id, 200, clock.now());
    const [loading] = outbox.dueDeliveries(10, clock.now());
    outbox.markGivenUp(loading!.id, { status: 410, error: "HTTP 410", at: clock.now() });
    const created = store.jobs.get(job.id)!.createdAt;
    expect(outbox.deliveriesForJob(job.id)).to.deep.equal([
      {
        event_id: queued!.event_id,
        type: "job.queued",
        status: "delivered",
        attempts: 2,
        last_status: 200,
        last_error: null,
        next_attempt_at: null,
        delivered_at: t0 + 1000,
        created_at: created,
      },
      {
        event_id: loading!.event_id,
        type: "job.loading",
        status: "failed",
        attempts: 1,
        last_status: 410,
        last_error: "HTTP 410",
        next_attempt_at: null,
        delivered_at: null,
        created_at: created + 1,
      },
      {
        event_id: outbox.deliveriesForJob(job.id)[2]!.event_id,
        type: "job.working",
        status: "pending",
        attempts: 0,
        last_status: null,
        last_error: null,
        next_attempt_at: created + 2,
        delivered_at: null,
        created_at: created + 2,
      },
    ]);
    expect(outbox.deliveriesForJob("01NOSUCHJOB00000000000000")).to.deep.equal([]);
  });

  it("has nothing to deliver for jobs without a webhook or whose filter skips the event", () => {
    const plain = store.transitions.createJob(chat);
    const filtered = store.transitions.createJob({
      ...chat,
      webhook: { url: "http://127.0.0.1:1/f", events: ["job.done"] },
    });
    store.transitions.transition(filtered.id, "loading", { incrementAttempts: true });
    expect(outbox.dueDeliveries(10, clock.now())).to.deep.equal([]);
    expect(outbox.nextDueAt()).to.equal(null);
    expect(outbox.deliveriesForJob(plain.id)).to.deep.equal([]);
    store.transitions.transition(filtered.id, "working");
    store.transitions.transition(filtered.id, "done", { result: { ok: true } });
    expect(outbox.dueDeliveries(10, clock.now()).map((d) => d.type)).to.deep.equal(["job.done"]);
  });

  it("reads due deliveries for some receivers only, or past the ones left out", () => {
    const busy = [1, 2, 3].map(() => jobWithThreeEvents({ url: "http://127.0.0.1:1/busy" }));
    const withCredentials = jobWithThreeEvents({ url: "http://user:pw@127.0.0.1:1/busy?x=1" });
    const other = jobWithThreeEvents({ url: "http://127.0.0.2:1/hook" });
    const at = clock.now();
    expect(
      outbox.dueDeliveries(1, at).map((d) => d.job_id),
      "the busy receiver's backlog comes first",
    ).to.deep.equal([busy[0]!.id]);
    expect(
      outbox.dueDeliveries(1, at, { except: ["http://127.0.0.1:1"] }).map((d) => d.job_id),
      "a user and password do not make another receiver",
    ).to.deep.equal([other.id]);
    expect(outbox.dueDeliveries(10, at, { only: ["http://127.0.0.1:1"] }).map((d) => d.job_id)).to.deep.equal([
      ...busy.map((j) => j.id),
      withCredentials.id,
    ]);
    expect(outbox.dueDeliveries(10, at, { only: [] })).to.deep.equal([]);
  });

  it("keeps an endpoint's failing or disabled state, and forgets it when told", () => {
    const endpoint = "http://127.0.0.1:1/hook";
    expect(outbox.endpointHealth(endpoint)).to.equal(null);
    const health = {
      failingSince: 5,
      consecutiveFailures: 2,
      disabledAt: null,
      disabledUntil: null,
      disabledReason: null,
    };
    outbox.saveEndpointHealth(endpoint, health, 10);
    expect(outbox.endpointHealth(endpoint)).to.deep.equal(health);
    outbox.saveEndpointHealth(endpoint, { ...health, consecutiveFailures: 3 }, 20);
    expect(outbox.endpointHealth(endpoint)).to.include({ consecutiveFailures: 3 });
    outbox.saveEndpointHealth(endpoint, null);
    expect(outbox.endpointHealth(endpoint), "healthy: no row").to.equal(null);
    outbox.saveEndpointHealth("http://127.0.0.1:1/old", health, 100);
    outbox.saveEndpointHealth("http://127.0.0.1:1/new", health, 200);
    expect(outbox.forgetQuietEndpoints(150)).to.equal(1);
    expect(outbox.endpointHealth("http://127.0.0.1:1/old")).to.equal(null);
    expect(outbox.endpointHealth("http://127.0.0.1:1/new")).to.deep.equal(health);
  });

  it("disabling an endpoint settles its pending deliveries at once, but those in flight and other endpoints'", () => {
    const a = jobWithThreeEvents({ url: "http://127.0.0.1:1/hook" });
    const b = jobWithThreeEvents({ url: "http://user:pw@127.0.0.1:1/hook#frag" });
    const c = jobWithThreeEvents({ url: "http://127.0.0.1:1/hook-2" });
    const [inFlight] = outbox.dueDeliveries(1, clock.now());
    const health = {
      failingSince: 1,
      consecutiveFailures: 1,
      disabledAt: 1,
      disabledUntil: 99,
      disabledReason: "gone",
    };
    const settled = outbox.disableEndpoint("http://127.0.0.1:1/hook", health, "endpoint disabled: gone", {
      at: clock.now(),
      inFlight: [inFlight!.id],
    });
    expect(settled).to.equal(5);
    expect(outbox.endpointHealth("http://127.0.0.1:1/hook")).to.deep.equal(health);
    const view = (id: string) => outbox.deliveriesForJob(id).map((d) => [d.status, d.attempts, d.last_error]);
    expect(view(a.id)).to.deep.equal([
      ["pending", 0, null],
      ["failed", 0, "endpoint disabled: gone"],
      ["failed", 0, "endpoint disabled: gone"],
    ]);
    expect(view(b.id)).to.deep.equal([1, 2, 3].map(() => ["failed", 0, "endpoint disabled: gone"]));
    expect(view(c.id)).to.deep.equal([1, 2, 3].map(() => ["pending", 0, null]));
  });

  it("fails a delivery without counting an attempt", () => {
    const job = jobWithThreeEvents();
    const [head] = outbox.dueDeliveries(1, clock.now());
    expect(outbox.failUnattempted(head!.id, "endpoint disabled: gone", clock.now())).to.be.true;
    expect(outbox.failUnattempted(head!.id, "again", clock.now())).to.be.false;
    expect(outbox.deliveriesForJob(job.id)[0]).to.include({
      status: "failed",
      attempts: 0,
      last_error: "endpoint disabled: gone",
      next_attempt_at: null,
    });
    expect(
      outbox.dueDeliveries(10, clock.now()).map((d) => d.type),
      "the job's next event goes",
    ).to.deep.equal(["job.loading"]);
  });
});
