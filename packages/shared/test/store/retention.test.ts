import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { openStore, type Store } from "../../src/store/store.js";
import { fakeClock, tempDbPath } from "./helpers.js";

describe("store/retention", () => {
  let store: Store;
  let dbPath: string;
  const clock = fakeClock();
  beforeEach(() => {
    dbPath = tempDbPath();
    store = openStore({ dbPath, now: clock.now });
  });
  afterEach(() => {
    store.close();
    fs.rmSync(path.dirname(dbPath), { recursive: true, force: true });
  });

  /** A job created now; ended `endAfterMs` later when given (the clock moves). */
  const job = (endAfterMs?: number) => {
    const created = store.transitions.createJob({
      kind: "chat",
      api: "ollama",
      mode: "async",
      model: "m",
      request: {},
      webhook: { url: "http://127.0.0.1:1/hook" },
    });
    if (endAfterMs !== undefined) {
      clock.advance(endAfterMs);
      store.transitions.transition(created.id, "canceled");
    }
    return created.id;
  };
  const count = (table: string) => (store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

  it("lists jobs that ended before the cutoff, oldest ending first, up to the limit; never unfinished ones", () => {
    const first = job();
    const second = job();
    const unfinished = job();
    clock.advance(10);
    store.transitions.transition(second, "canceled"); // ends first, though queued after `first`
    clock.advance(10);
    store.transitions.transition(first, "canceled");
    const cutoff = clock.now() + 5;
    clock.advance(5);
    const onCutoff = job(0);
    expect(store.retention.expiredJobIds("async", cutoff, 10)).to.deep.equal([second, first]);
    expect(store.retention.expiredJobIds("async", cutoff, 1)).to.deep.equal([second]);
    expect(store.retention.expiredJobIds("async", cutoff + 1, 10)).to.deep.equal([second, first, onCutoff]);
    expect(store.retention.expiredJobIds("async", cutoff + 1_000_000, 10)).to.not.include(unfinished);
    // Each mode is read on its own: these are all async jobs.
    expect(store.retention.expiredJobIds("sync", cutoff + 1_000_000, 10)).to.deep.equal([]);
  });

  it("deletes jobs with their history, outbox rows and artifact index, and nothing else", () => {
    const gone = [job(1), job(1)];
    const kept = job(1);
    for (const id of [...gone, kept]) {
      store.artifacts.record({
        jobId: id,
        name: "result.json",
        contentType: "application/json",
        size: 2,
        path: `artifacts/${id}/result.json`,
        createdAt: clock.now(),
      });
    }
    expect([count("jobs"), count("job_transitions"), count("webhook_outbox"), count("artifacts")]).to.deep.equal([
      3, 6, 6, 3,
    ]);
    store.retention.deleteJobs(gone);
    expect([count("jobs"), count("job_transitions"), count("webhook_outbox"), count("artifacts")]).to.deep.equal([
      1, 2, 2, 1,
    ]);
    expect(store.jobs.get(kept)?.state).to.equal("canceled");
    store.retention.deleteJobs([]);
    expect(count("jobs")).to.equal(1);
  });
});
