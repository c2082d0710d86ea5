import { expect } from "chai";
import { pickNext, type QueuedJobRef } from "../../src/drain-policy.js";
import { runnerOptionsKey } from "../../src/runner-options.js";
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

  const enqueue = (model: string, options?: Record<string, unknown>) => {
    clock.advance(1);
    const request = options ? { model, options } : { model };
    return store.transitions.createJob({ kind: "chat", api: "ollama", mode: "async", model, request });
  };
  const key = (model: string, runnerOptions = "") => ({ model, runnerOptions });

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
    const claimed = store.claims.claimNext({
      workerId: "w1",
      resident: key("a"),
      starvationMs: 1000,
      now: clock.now(),
    });
    expect(claimed?.id).to.equal(forResident.id);
  });

  it("prefers the resident load key: the resident model with other runner options is another load", () => {
    enqueue("a", { num_ctx: 2048 });
    const sameOptions = enqueue("a", { num_ctx: 8192, temperature: 0.1 });
    const resident = key("a:latest", "num_ctx=8192");
    const claimed = store.claims.claimNext({ workerId: "w1", resident, starvationMs: 1000, now: clock.now() });
    expect(claimed?.id).to.equal(sameOptions.id);
  });

  it("drains by model alone when told to ignore runner options (FOREMAN_DRAIN_BY_RUNNER_OPTIONS=false)", () => {
    const byModel = openStore({ dbPath: tempDbPath(), now: clock.now, drainByRunnerOptions: false });
    try {
      byModel.workerLease.tryAcquire(lease);
      const create = (model: string, options: Record<string, unknown>) =>
        byModel.transitions.createJob({
          kind: "chat",
          api: "ollama",
          mode: "async",
          model,
          request: { model, options },
        });
      create("b", {});
      const a2048 = create("a", { num_ctx: 2048 });
      create("a", { num_ctx: 8192 });
      // The resident key as the worker reports it then: the model, without runner options.
      const claimed = byModel.claims.claimNext({
        workerId: "w1",
        resident: key("a:latest"),
        starvationMs: 1000,
        now: clock.now(),
      });
      expect(claimed?.id, "a's jobs are one group, whatever their num_ctx").to.equal(a2048.id);
      const stored = byModel.db.prepare("SELECT DISTINCT runner_options AS o FROM jobs").all();
      expect(stored).to.deep.equal([{ o: "" }]);
    } finally {
      byModel.close();
    }
  });

  it("keeps a job with no runner options apart from one that names the default", () => {
    const explicit = enqueue("a", { num_ctx: 2048 });
    const plain = enqueue("a", { temperature: 0 });
    const claimed = store.claims.claimNext({
      workerId: "w1",
      resident: key("a"),
      starvationMs: 1000,
      now: clock.now(),
    });
    expect(claimed?.id).to.equal(plain.id);
    expect(explicit.id < plain.id).to.equal(true);
  });

  it("agrees with pickNext on random queues (the SQL implements the policy)", () => {
    const models = ["a", "b", "c"];
    const optionSets = [undefined, { num_ctx: 2048 }, { num_ctx: 8192 }, { num_ctx: 2048, num_gpu: 1 }];
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
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
        const options = pick(optionSets);
        const job = enqueue(pick(models), options);
        refs.push({ id: job.id, model: job.model, runnerOptions: runnerOptionsKey(options), createdAt: job.createdAt });
      }
      const resident = rand() < 0.2 ? null : key(pick(models), runnerOptionsKey(pick(optionSets)));
      const starvationMs = Math.floor(rand() * 400);
      const expected = pickNext(refs, resident, clock.now(), starvationMs);
      const claimed = store.claims.claimNext({ workerId: "w1", resident, starvationMs, now: clock.now() });
      expect(claimed?.id, `round ${round}`).to.equal(expected?.id);
    }
  });

  it("agrees with pickNext when several load keys are resident, most recently used first", () => {
    const models = ["a", "b", "c", "d"];
    const optionSets = [undefined, { num_ctx: 2048 }, { num_ctx: 8192 }];
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    let seed = 5;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 60; round++) {
      store.db.exec("DELETE FROM jobs");
      const refs: QueuedJobRef[] = [];
      const size = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < size; i++) {
        clock.advance(Math.floor(rand() * 50));
        const options = pick(optionSets);
        const job = enqueue(pick(models), options);
        refs.push({ id: job.id, model: job.model, runnerOptions: runnerOptionsKey(options), createdAt: job.createdAt });
      }
      const shuffled = [...models].sort(() => rand() - 0.5);
      const resident = shuffled
        .slice(0, Math.floor(rand() * 4))
        .map((model) => key(model, runnerOptionsKey(pick(optionSets))));
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
    expect(plan(OLDEST_QUEUED_FOR_MODEL_SQL, "m:latest", "")).to.match(
      /INDEX jobs_queued_by_model \(model=\? AND runner_options=\?\)/,
    );
    store.close();
  });
});
