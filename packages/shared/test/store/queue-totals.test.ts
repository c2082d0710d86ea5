import { expect } from "chai";
import fc from "fast-check";
import { openDatabase } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { openStore, type Store } from "../../src/store/store.js";
import { fakeClock, tempDbPath } from "./helpers.js";

const lease = { workerId: "w1", pid: process.pid, hostname: "test-host" };

/** What the triggers must agree with: the queue counted the slow way. */
function recount(store: Store) {
  return store.db
    .prepare(
      "SELECT COUNT(*) AS jobs, COALESCE(SUM(octet_length(request)), 0) AS bytes FROM jobs WHERE state = 'queued'",
    )
    .get() as { jobs: number; bytes: number };
}

type Op =
  | { op: "create"; prompt: string }
  | { op: "claim" }
  | { op: "requeue" }
  | { op: "finish" }
  | { op: "cancel"; pick: number }
  | { op: "prune" };

const ops: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("create" as const), prompt: fc.string({ unit: "binary", maxLength: 40 }) }),
  fc.record({ op: fc.constant("claim" as const) }),
  fc.record({ op: fc.constant("requeue" as const) }),
  fc.record({ op: fc.constant("finish" as const) }),
  fc.record({ op: fc.constant("cancel" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("prune" as const) }),
);

describe("store/queue-totals", () => {
  let store: Store;
  const clock = fakeClock();
  beforeEach(() => {
    store = openStore({ dbPath: tempDbPath(), now: clock.now });
    store.workerLease.tryAcquire(lease);
  });
  afterEach(() => store.close());

  it("counts queued jobs and their request bytes (UTF-8) on insert, claim, requeue, cancel and delete", () => {
    expect(store.queueTotals.get()).to.deep.equal({ jobs: 0, bytes: 0 });
    const request = { model: "m", prompt: "héllo 日本" };
    const bytes = Buffer.byteLength(JSON.stringify(request));
    const a = store.transitions.createJob({ kind: "generate", api: "ollama", mode: "async", model: "m", request });
    store.transitions.createJobs([
      { kind: "generate", api: "ollama", mode: "async", model: "m", request },
      { kind: "generate", api: "ollama", mode: "sync", model: "m", request },
    ]);
    expect(store.queueTotals.get()).to.deep.equal({ jobs: 3, bytes: 3 * bytes });
    store.transitions.transition(a.id, "loading");
    expect(store.queueTotals.get()).to.deep.equal({ jobs: 2, bytes: 2 * bytes });
    store.transitions.requeue(a.id);
    expect(store.queueTotals.get()).to.deep.equal({ jobs: 3, bytes: 3 * bytes });
    store.transitions.transition(a.id, "canceled");
    expect(store.queueTotals.get()).to.deep.equal({ jobs: 2, bytes: 2 * bytes });
    store.db.exec("DELETE FROM jobs");
    expect(store.queueTotals.get()).to.deep.equal({ jobs: 0, bytes: 0 });
  });

  it("agrees with a full recount after any sequence of queue operations", () => {
    fc.assert(
      fc.property(fc.array(ops, { maxLength: 40 }), (sequence) => {
        store.db.exec("DELETE FROM jobs");
        for (const step of sequence) {
          clock.advance(1);
          const queued = store.jobs.list({ state: "queued", limit: 100 });
          const active = store.jobs.list({ state: "loading", limit: 100 });
          if (step.op === "create") {
            store.transitions.createJob({
              kind: "generate",
              api: "ollama",
              mode: "async",
              model: "m",
              request: { model: "m", prompt: step.prompt },
            });
          } else if (step.op === "claim") {
            store.claims.claimNext({ workerId: "w1", resident: null, starvationMs: 0, now: clock.now() });
          } else if (step.op === "requeue" && active[0]) {
            store.transitions.requeue(active[0].id);
          } else if (step.op === "finish" && active[0]) {
            store.transitions.transition(active[0].id, "failed", { error: "x" });
          } else if (step.op === "cancel" && queued.length > 0) {
            store.transitions.transition(queued[step.pick % queued.length]!.id, "canceled");
          } else if (step.op === "prune") {
            store.db.exec("DELETE FROM jobs WHERE state IN ('done', 'failed', 'canceled')");
          }
          expect(store.queueTotals.get()).to.deep.equal(recount(store));
        }
      }),
      { numRuns: 60 },
    );
  });

  it("starts from the jobs already queued when the migration runs on an existing database", () => {
    const file = tempDbPath();
    const db = openDatabase({ path: file });
    const before = MIGRATIONS.filter((m) => m.version < 4);
    migrate(db, before);
    const insert = db.prepare(
      `INSERT INTO jobs (id, kind, api, mode, model, state, request, created_at, updated_at)
       VALUES (?, 'chat', 'ollama', 'async', 'm', ?, ?, 0, 0)`,
    );
    insert.run("01A", "queued", '{"p":"ü"}');
    insert.run("01B", "queued", '{"p":"abc"}');
    insert.run("01C", "done", '{"p":"not counted"}');
    migrate(db);
    expect(db.prepare("SELECT jobs, bytes FROM queue_totals").get()).to.deep.equal({
      jobs: 2,
      bytes: Buffer.byteLength('{"p":"ü"}') + Buffer.byteLength('{"p":"abc"}'),
    });
    db.close();
  });
});
