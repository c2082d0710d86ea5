import { expect } from "chai";
import { pickNext, type QueuedJobRef } from "../../src/drain-policy.js";
import { OLDEST_QUEUED_FOR_MODEL_SQL, OLDEST_QUEUED_SQL } from "../../src/store/claim.js";
import { openStore, type Store } from "../../src/store/store.js";
import { fakeClock, tempDbPath } from "./helpers.js";

const lease = { workerId: "w1", pid: process.pid, hostname: "test-host" };

describe("store/claim", () => {
  let store: Store;
  const clock = fakeClock();
  beforeEach(() => {
    store = openStore({ dbPath: tempDbPath(), now: clock.now });
    store.workerLease.tryAcquire(lease);
  });
  afterEach(() => store.close());

  const enqueue = (model: string) => {
    clock.advance(1);
    return store.transitions.createJob({ kind: "chat", api: "ollama", mode: "async", model, request: { model } });
  };

  it("claims nothing from an empty queue, and nothing without the lease", () => {
    expect(store.claims.claimNext({ workerId: "w1", resident: null, starvationMs: 1000, now: clock.now() })).to.equal(
      null,
    );
    enqueue("a");
    expect(
      store.claims.claimNext({ workerId: "someone-else", resident: null, starvationMs: 1000, now: clock.now() }),
    ).to.equal(null);
  });

  it("moves the claimed job to loading and counts the attempt", () => {
    const job = enqueue("a");
    const claimed = store.claims.claimNext({ workerId: "w1", resident: null, starvationMs: 1000, now: clock.now() });
    expect(claimed).to.include({ id: job.id, state: "loading", attempts: 1 });
  });

  it("prefers the resident model's job, named with or without its tag", () => {
    enqueue("b");
    const forResident = enqueue("a");
    const claimed = store.claims.claimNext({ workerId: "w1", resident: "a", starvationMs: 1000, now: clock.now() });
    expect(claimed?.id).to.equal(forResident.id);
  });

  it("agrees with pickNext on random queues (the SQL implements the policy)", () => {
    const models = ["a", "b", "c"];
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 40; round++) {
      store.db.exec("DELETE FROM jobs");
      const refs: QueuedJobRef[] = [];
      const size = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < size; i++) {
        clock.advance(Math.floor(rand() * 50));
        const job = enqueue(models[Math.floor(rand() * 3)]!);
        refs.push({ id: job.id, model: job.model, createdAt: job.createdAt });
      }
      const resident = rand() < 0.2 ? null : models[Math.floor(rand() * 3)]!;
      const starvationMs = Math.floor(rand() * 400);
      const expected = pickNext(refs, resident, clock.now(), starvationMs);
      const claimed = store.claims.claimNext({ workerId: "w1", resident, starvationMs, now: clock.now() });
      expect(claimed?.id, `round ${round}`).to.equal(expected?.id);
    }
  });
});

describe("store/claim: query plans", () => {
  it("reads the queue through indexes that hold no finished jobs' rows in the way", () => {
    const store = openStore({ dbPath: tempDbPath() });
    const plan = (sql: string, ...params: string[]) =>
      (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join(" | ");
    expect(plan(OLDEST_QUEUED_SQL)).to.match(/USING (COVERING )?INDEX jobs_by_state \(state=\?\)/);
    expect(plan(OLDEST_QUEUED_FOR_MODEL_SQL, "m:latest")).to.match(/INDEX jobs_queued_by_model \(model=\?\)/);
    store.close();
  });
});
