import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { openStore, type Store } from "../../src/store/store.js";
import { tempDbPath } from "./helpers.js";

const chat = { kind: "chat" as const, api: "ollama" as const, mode: "sync" as const, model: "m", request: {} };

describe("store/jobs: the narrow reads of the hot checks", () => {
  let store: Store;
  let dbPath: string;
  beforeEach(() => {
    dbPath = tempDbPath();
    store = openStore({ dbPath });
  });
  afterEach(() => {
    store.close();
    fs.rmSync(path.dirname(dbPath), { recursive: true, force: true });
  });

  const claimed = () => {
    const job = store.transitions.createJob(chat);
    store.transitions.transition(job.id, "loading", { incrementAttempts: true });
    return job.id;
  };

  it("state: the job's state, or null for a job that does not exist", () => {
    const id = claimed();
    expect(store.jobs.state(id)).to.equal("loading");
    store.transitions.transition(id, "working");
    expect(store.jobs.state(id)).to.equal("working");
    expect(store.jobs.state("01NOSUCHJOB0000000000000000")).to.equal(null);
  });

  it("ending: null until the job ends, then what a relay's #end would say", () => {
    const done = claimed();
    expect(store.jobs.ending(done)).to.equal(null);
    store.transitions.transition(done, "working");
    expect(store.jobs.ending(done)).to.equal(null);
    store.transitions.transition(done, "done", { result: { ok: true } });
    expect(store.jobs.ending(done)).to.deep.equal({ state: "done" });

    const failed = claimed();
    store.transitions.transition(failed, "failed", { error: "model 'x' not found", errorStatus: 404 });
    expect(store.jobs.ending(failed)).to.deep.equal({ state: "failed", status: 404, error: "model 'x' not found" });

    const canceled = store.transitions.createJob(chat);
    expect(store.jobs.ending(canceled.id)).to.equal(null);
    store.transitions.requestCancel(canceled.id);
    expect(store.jobs.ending(canceled.id)).to.deep.equal({ state: "canceled" });
    expect(store.jobs.ending("01NOSUCHJOB0000000000000000")).to.equal(null);
  });

  it("cancelRequested: set by a cancel of a running job, not by one of a queued job", () => {
    const running = claimed();
    expect(store.jobs.cancelRequested(running)).to.equal(false);
    store.transitions.requestCancel(running);
    expect(store.jobs.cancelRequested(running)).to.equal(true);
    const queued = store.transitions.createJob(chat);
    store.transitions.requestCancel(queued.id);
    expect(store.jobs.cancelRequested(queued.id), "ended at once, nothing left to stop").to.equal(false);
    expect(store.jobs.cancelRequested("01NOSUCHJOB0000000000000000")).to.equal(false);
  });

  it("reads neither the request nor the result (they may hold megabytes): a row with unreadable ones still answers", () => {
    const id = claimed();
    store.transitions.requestCancel(id);
    store.db.prepare("UPDATE jobs SET request = 'not json', result = 'not json either' WHERE id = ?").run(id);
    expect(() => store.jobs.get(id), "the full read parses them").to.throw(SyntaxError);
    expect(store.jobs.state(id)).to.equal("loading");
    expect(store.jobs.ending(id)).to.equal(null);
    expect(store.jobs.cancelRequested(id)).to.equal(true);
    store.db.prepare("UPDATE jobs SET state = 'failed', error = 'e', error_status = 500 WHERE id = ?").run(id);
    expect(store.jobs.ending(id)).to.deep.equal({ state: "failed", status: 500, error: "e" });
  });
});
