import fs from "node:fs";
import path from "node:path";
import { appendRelayEnd, ensureRelay, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import { tempDbPath } from "../../../shared/test/store/helpers.js";
import { waitForJobEnd } from "../../src/jobs/wait-for-end.js";

describe("jobs/wait-for-end: a long poll", () => {
  let store: Store;
  let dataDir: string;
  beforeEach(() => {
    const dbPath = tempDbPath();
    dataDir = path.dirname(dbPath);
    store = openStore({ dbPath });
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("checks the job's state alone while it waits, reads the whole job once at the end, and wakes on the relay", async () => {
    // A 9 MB prompt: reading and parsing it on every check is what a long poll must not do.
    const job = store.transitions.createJob({
      kind: "generate",
      api: "ollama",
      mode: "async",
      model: "m",
      request: { model: "m", prompt: "x".repeat(9 * 1024 * 1024) },
    });
    ensureRelay(dataDir, job.id);
    const counts = { get: 0, state: 0 };
    const counting = {
      ...store,
      jobs: {
        ...store.jobs,
        get: (id: string) => {
          counts.get++;
          return store.jobs.get(id);
        },
        state: (id: string) => {
          counts.state++;
          return store.jobs.state(id);
        },
      },
    } as Store;
    // A 10-second fallback poll: ending well inside the test's timeout proves the relay's change woke it.
    const waiting = waitForJobEnd(counting, dataDir, job.id, 20_000, 10_000);
    await new Promise((resolve) => setImmediate(resolve));
    store.transitions.requestCancel(job.id);
    appendRelayEnd(dataDir, job.id, { state: "canceled", status: 499, error: "job canceled" });
    const ended = await waiting;
    expect(ended?.state).to.equal("canceled");
    expect(counts.get).to.equal(1);
    expect(counts.state).to.be.greaterThan(0);
  });
});
