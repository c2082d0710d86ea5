import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { createJobOutcomes, createLogger, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import { tempDbPath } from "../../shared/test/store/helpers.js";
import { createJobRescuer } from "../src/job-rescuer.js";

describe("job-rescuer", () => {
  let store: Store;
  let dataDir: string;
  let logged: string;

  beforeEach(() => {
    const dbPath = tempDbPath();
    dataDir = path.dirname(dbPath);
    store = openStore({ dbPath });
    store.workerLease.tryAcquire({ workerId: "w1", pid: process.pid, hostname: "h" });
    logged = "";
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  function rescuer(currentJobId: string | null = null) {
    const stream = new PassThrough();
    stream.on("data", (d) => (logged += String(d)));
    const logger = createLogger({ service: "worker", stream, level: "info" });
    const outcomes = createJobOutcomes({
      transitions: store.transitions.forWorker("w1"),
      artifacts: store.artifacts,
      dataDir,
      logger,
      inlineResultMaxBytes: 65536,
    });
    return createJobRescuer({ store, outcomes, logger, dataDir, currentJobId: () => currentJobId });
  }

  function runningJob(mode: "sync" | "async") {
    const job = store.transitions.createJob({ kind: "chat", api: "ollama", mode, model: "m", request: {} });
    store.transitions.transition(job.id, "loading", { incrementAttempts: true });
    store.transitions.transition(job.id, "working");
    return job.id;
  }

  it("settles a job stranded in working once the store accepts writes again, and says so once each way", () => {
    const id = runningJob("async");
    store.db.pragma("query_only = 1");
    const r = rescuer();
    expect(r.runOnce()).to.equal(0);
    expect(r.runOnce()).to.equal(0);
    expect(store.jobs.state(id)).to.equal("working");
    expect(logged.match(/could not settle stranded jobs/g)).to.have.length(1);
    store.db.pragma("query_only = 0");
    expect(r.runOnce()).to.equal(1);
    expect(store.jobs.state(id)).to.equal("queued");
    expect(logged).to.include("the database accepts writes again");
  });

  it("never touches the job the worker is running", () => {
    const running = runningJob("async");
    const stranded = runningJob("sync");
    expect(rescuer(running).runOnce()).to.equal(1);
    expect(store.jobs.state(running)).to.equal("working");
    // A sync job whose relay never started: its caller has nothing yet, so it waits in the queue again.
    expect(store.jobs.state(stranded)).to.equal("queued");
  });
});
