import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { drainOrder, type QueuedJobRef } from "../../src/drain-policy.js";
import { runnerOptionsKey } from "../../src/runner-options.js";
import { openStore, type Store } from "../../src/store/store.js";
import { fakeClock, tempDbPath } from "./helpers.js";

const lease = { workerId: "w1", pid: process.pid, hostname: "test-host" };

describe("store/queue-position", () => {
  let store: Store;
  const clock = fakeClock();
  beforeEach(() => {
    store = openStore({ dbPath: tempDbPath(), now: clock.now });
    store.workerLease.tryAcquire(lease);
  });
  afterEach(() => {
    store.close();
    fs.rmSync(path.dirname(store.db.name), { recursive: true, force: true });
  });

  const enqueue = (model: string, options?: Record<string, unknown>) =>
    store.transitions.createJob({
      kind: "chat",
      api: "ollama",
      mode: "async",
      model,
      request: options ? { model, options } : { model },
    });
  /** What the pure policy is fed: the queued jobs in queue order, read straight from the table. */
  const queuedRefs = () =>
    store.db
      .prepare(
        "SELECT id, model, runner_options AS runnerOptions, created_at AS createdAt FROM jobs WHERE state = 'queued' ORDER BY id",
      )
      .all() as QueuedJobRef[];

  it("worked example: starved prefix, then the current model's group, then groups by their oldest job", () => {
    const at = (age: number, model: string) => {
      clock.advance(0);
      const job = enqueue(model);
      store.db.prepare("UPDATE jobs SET created_at = ? WHERE id = ?").run(clock.now() - age, job.id);
      return job.id;
    };
    // Ages at "now", starvation bound 60 s; ids are in creation order.
    const a1 = at(90_000, "a"); // starved
    const b1 = at(70_000, "b"); // starved: the last one, so b is current after the prefix
    const c1 = at(30_000, "c");
    const a2 = at(20_000, "a");
    const b2 = at(10_000, "b");
    const c2 = at(5_000, "c");
    const positions = store.queuePositions.positions(
      [a1, b1, c1, a2, b2, c2].map((id) => store.jobs.get(id)!),
      { resident: { model: "a:latest", runnerOptions: "" }, now: clock.now(), starvationMs: 60_000 },
    );
    expect(Object.fromEntries(positions)).to.deep.equal({ [a1]: 1, [b1]: 2, [b2]: 3, [c1]: 4, [c2]: 5, [a2]: 6 });
  });

  it("worked example: one model with two num_ctx values is two groups, the resident one first", () => {
    const a2k1 = enqueue("a", { num_ctx: 2048 }).id;
    const a8k1 = enqueue("a", { num_ctx: 8192 }).id;
    const b1 = enqueue("b").id;
    const a2k2 = enqueue("a", { num_ctx: 2048, temperature: 1 }).id;
    const a8k2 = enqueue("a", { num_ctx: 8192 }).id;
    const a1 = enqueue("a").id;
    const positions = store.queuePositions.positions(
      [a2k1, a8k1, b1, a2k2, a8k2, a1].map((id) => store.jobs.get(id)!),
      { resident: { model: "a", runnerOptions: "num_ctx=8192" }, now: clock.now(), starvationMs: 60_000 },
    );
    expect(Object.fromEntries(positions)).to.deep.equal({
      [a8k1]: 1,
      [a8k2]: 2,
      [a2k1]: 3,
      [a2k2]: 4,
      [b1]: 5,
      [a1]: 6,
    });
  });

  it("leaves out jobs that are not queued, and counts none of them ahead", () => {
    const first = enqueue("a");
    const second = enqueue("a");
    const third = enqueue("b");
    store.claims.claimNext({ workerId: "w1", resident: null, starvationMs: 1000, now: clock.now() });
    store.transitions.transition(third.id, "canceled", { reason: "test" });
    const positions = store.queuePositions.positions([first, second, third], {
      resident: null,
      now: clock.now(),
      starvationMs: 1000,
    });
    expect(Object.fromEntries(positions)).to.deep.equal({ [second.id]: 1 });
    expect(store.queuePositions.positionOf(first, { resident: null, now: clock.now(), starvationMs: 1000 })).to.equal(
      undefined,
    );
  });

  // Ids a few milliseconds apart share the queue's per-second buckets; seconds apart, counts sum whole buckets.
  for (const spreadMs of [100, 4000]) {
    it(`equals the positions drainOrder gives, on random queues, one job at a time and a page at once (jobs up to ${spreadMs} ms apart)`, () => {
      const models = ["a", "b", "c", "d"];
      const optionSets = [undefined, undefined, { num_ctx: 2048 }, { num_ctx: 8192 }, { use_mmap: false }];
      let seed = 11;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
      for (let round = 0; round < 150; round++) {
        store.db.exec("DELETE FROM jobs");
        const size = Math.floor(rand() * 16);
        for (let i = 0; i < size; i++) {
          // Now and then the clock steps back (an NTP correction, or two gateways' clocks): the id still
          // keeps queue order, but created_at is no longer monotone in it, so the starved prefix can end
          // before a job that has waited long enough.
          clock.advance(rand() < 0.15 ? -Math.floor(rand() * 300) : Math.floor(rand() * spreadMs));
          enqueue(pick(models), pick(optionSets));
        }
        // Some jobs leave the queue: one claimed, some canceled.
        if (rand() < 0.5) store.claims.claimNext({ workerId: "w1", resident: null, starvationMs: 0, now: clock.now() });
        for (const ref of queuedRefs()) {
          if (rand() < 0.1) store.transitions.transition(ref.id, "canceled", { reason: "test" });
        }
        clock.advance(Math.floor(rand() * 200));
        const context = {
          resident:
            rand() < 0.25
              ? null
              : { model: `${pick([...models, "e"])}:latest`, runnerOptions: runnerOptionsKey(pick(optionSets)) },
          now: clock.now(),
          starvationMs: Math.floor(rand() * 1500),
        };
        const refs = queuedRefs();
        const expected = new Map(
          drainOrder(refs, context.resident, context.now, context.starvationMs).map((j, i) => [j.id, i + 1]),
        );
        const all = store.queuePositions.positions(refs, context);
        expect(Object.fromEntries(all), `round ${round}: whole queue`).to.deep.equal(Object.fromEntries(expected));
        for (const ref of refs) {
          expect(store.queuePositions.positionOf(ref, context), `round ${round}: ${ref.id}`).to.equal(
            expected.get(ref.id),
          );
        }
        const page = refs.filter(() => rand() < 0.4);
        const pagePositions = store.queuePositions.positions(page, context);
        expect(Object.fromEntries(pagePositions), `round ${round}: page`).to.deep.equal(
          Object.fromEntries(page.map((j) => [j.id, expected.get(j.id)])),
        );
      }
      // The buckets the counts summed are exact: one per second of queued ids, in all and per load key.
      expect(store.db.prepare("SELECT prefix, n FROM queue_buckets ORDER BY prefix").all()).to.deep.equal(
        store.db
          .prepare(
            "SELECT substr(id, 1, 8) AS prefix, COUNT(*) AS n FROM jobs WHERE state = 'queued' GROUP BY 1 ORDER BY 1",
          )
          .all(),
      );
    });
  }

  it("equals drainOrder when the worker keeps several load keys resident, on random queues", () => {
    const models = ["a", "b", "c", "d"];
    const optionSets = [undefined, undefined, { num_ctx: 2048 }, { num_ctx: 8192 }];
    let seed = 23;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    for (let round = 0; round < 150; round++) {
      store.db.exec("DELETE FROM jobs");
      const size = Math.floor(rand() * 16);
      for (let i = 0; i < size; i++) {
        clock.advance(rand() < 0.15 ? -Math.floor(rand() * 300) : Math.floor(rand() * 100));
        enqueue(pick(models), pick(optionSets));
      }
      clock.advance(Math.floor(rand() * 200));
      const workerSlots = 1 + Math.floor(rand() * 3);
      const resident = [...models, "e"]
        .sort(() => rand() - 0.5)
        .slice(0, Math.floor(rand() * (workerSlots + 1)))
        .map((m) => ({ model: `${m}:latest`, runnerOptions: runnerOptionsKey(pick(optionSets)) }));
      const context = { resident, workerSlots, now: clock.now(), starvationMs: Math.floor(rand() * 1500) };
      const refs = queuedRefs();
      const expected = new Map(
        drainOrder(refs, resident, context.now, context.starvationMs, workerSlots).map((j, i) => [j.id, i + 1]),
      );
      const all = store.queuePositions.positions(refs, context);
      expect(Object.fromEntries(all), `round ${round}: whole queue`).to.deep.equal(Object.fromEntries(expected));
      const page = refs.filter(() => rand() < 0.4);
      expect(Object.fromEntries(store.queuePositions.positions(page, context)), `round ${round}: page`).to.deep.equal(
        Object.fromEntries(page.map((j) => [j.id, expected.get(j.id)])),
      );
    }
  });
});

describe("store/queue-position: query plans", () => {
  it("counts and seeks through covering indexes, never reading a table row", () => {
    const store = openStore({ dbPath: tempDbPath() });
    const plan = (sql: string) =>
      (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join(" | ");
    expect(
      plan("SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_state WHERE state = 'queued' AND id > 'A' AND id <= 'B'"),
    ).to.match(/^SEARCH jobs USING COVERING INDEX jobs_by_state \(state=\? AND id>\? AND id<\?\)$/);
    expect(
      plan(
        `SELECT COUNT(*) FROM jobs INDEXED BY jobs_queued_by_model
          WHERE state = 'queued' AND model = 'm' AND runner_options = '' AND id > 'A' AND id <= 'B'`,
      ),
    ).to.match(
      /^SEARCH jobs USING COVERING INDEX jobs_queued_by_model \(model=\? AND runner_options=\? AND id>\? AND id<\?\)$/,
    );
    expect(
      plan(
        `SELECT id FROM jobs INDEXED BY jobs_by_state
          WHERE state = 'queued' AND id >= 'A' AND id <= 'B' AND created_at > 5 ORDER BY id LIMIT 1`,
      ),
    ).to.match(/^SEARCH jobs USING COVERING INDEX jobs_by_state \(state=\? AND id>\? AND id<\?\)$/);
    expect(
      plan(
        `SELECT id, model, runner_options FROM jobs INDEXED BY jobs_by_state
          WHERE state = 'queued' AND id > 'A'
            AND (model, runner_options) NOT IN (SELECT value ->> 0, value ->> 1 FROM json_each('[]'))
          ORDER BY id LIMIT 1`,
      ),
    ).to.match(/^SEARCH jobs USING COVERING INDEX jobs_by_state \(state=\? AND id>\?\) \| LIST SUBQUERY/);
    // The walk back through the starved prefix for the other models it ends with (several worker slots).
    expect(
      plan(
        `SELECT id, model, runner_options FROM jobs INDEXED BY jobs_by_state
          WHERE state = 'queued' AND id < 'B' AND model NOT IN (SELECT value FROM json_each('[]'))
          ORDER BY id DESC LIMIT 1`,
      ),
    ).to.match(/^SEARCH jobs USING COVERING INDEX jobs_by_state \(state=\? AND id<\?\) \| LIST SUBQUERY/);
    store.close();
    fs.rmSync(path.dirname(store.db.name), { recursive: true, force: true });
  });
});
