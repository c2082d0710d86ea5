import { type JobMode, type JobRecord, LeaseLostError, RelayWriter } from "@foreman/shared";
import { expect } from "chai";
import { recoverInterruptedJobs } from "../src/recovery.js";
import { harness, type World } from "./harness.js";

describe("recovery", () => {
  const h = harness();

  /**
   * A job the previous worker left in `state` on its `attempts`-th attempt, with a relay that has started when
   * `started` (the previous worker's lines, cut off without an end).
   */
  function leftRunning(
    world: World,
    spec: { mode: JobMode; attempts: number; state: "loading" | "working"; started: boolean },
  ): JobRecord {
    const job = world.createJob({ mode: spec.mode, maxAttempts: 2 });
    for (let i = 1; i <= spec.attempts; i++) {
      world.store.transitions.transition(job.id, "loading", { incrementAttempts: true });
      if (i < spec.attempts) world.store.transitions.requeue(job.id);
    }
    if (spec.state === "working") world.store.transitions.transition(job.id, "working");
    if (spec.started) {
      const relay = RelayWriter.open(world.dataDir, job.id);
      relay.start({ attempt: spec.attempts, status: 200, content_type: "application/x-ndjson" });
      relay.data('{"message":{"content":"cut"},"done":false}');
      relay.close();
    }
    return world.store.jobs.get(job.id)!;
  }

  it("ends each job a previous worker left running by the retry rule", async () => {
    const world = h.world();
    const interrupted = "worker interrupted while the job was running";
    const cases = [
      { name: "async, attempts left", mode: "async", attempts: 1, state: "working", started: true, expect: "queued" },
      { name: "async, last attempt", mode: "async", attempts: 2, state: "working", started: true, expect: "failed" },
      {
        name: "sync, caller has nothing",
        mode: "sync",
        attempts: 1,
        state: "loading",
        started: false,
        expect: "queued",
      },
      { name: "sync, caller has bytes", mode: "sync", attempts: 1, state: "working", started: true, expect: "failed" },
      {
        name: "sync, last attempt, nothing sent",
        mode: "sync",
        attempts: 2,
        state: "loading",
        started: false,
        expect: "failed",
      },
    ] as const;
    const jobs = cases.map((c) => leftRunning(world, c));
    const canceled = leftRunning(world, { mode: "async", attempts: 1, state: "working", started: true });
    world.store.transitions.requestCancel(canceled.id);
    const queued = world.createJob();
    const done = leftRunning(world, { mode: "async", attempts: 1, state: "working", started: true });
    world.store.transitions.transition(done.id, "done", { result: {} });

    expect(
      recoverInterruptedJobs({
        store: world.store,
        outcomes: world.outcomes,
        logger: world.log.logger,
        dataDir: world.dataDir,
      }),
    ).to.equal(6);

    cases.forEach((c, i) => {
      const after = world.store.jobs.get(jobs[i]!.id)!;
      expect(after.state, c.name).to.equal(c.expect);
      expect(after.attempts, `${c.name}: the interrupted attempt counts`).to.equal(c.attempts);
      const ends = world.relayEnds(after.id);
      if (c.expect === "queued") {
        expect(ends, c.name).to.deep.equal([]);
      } else {
        const error = c.mode === "sync" && c.started ? interrupted : `${interrupted}; attempt limit (2) reached`;
        expect(after, c.name).to.include({ error, errorStatus: 503 });
        expect(ends, c.name).to.deep.equal([{ state: "failed", status: 503, error }]);
      }
    });
    expect(world.store.jobs.get(canceled.id)!.state).to.equal("canceled");
    expect(world.relayEnds(canceled.id)).to.deep.equal([{ state: "canceled", status: 499, error: "job canceled" }]);
    expect(world.store.jobs.get(queued.id)!.state, "a queued job is not recovered").to.equal("queued");
    expect(world.relayEnds(done.id), "an ended job is left alone").to.deep.equal([]);
    expect(await world.log.waitFor("recovered interrupted jobs")).to.include({ count: 6 });
  });

  it("records `working` for a worker killed between the relay's #start and its commit, so answers and moves agree", () => {
    const world = h.world();
    // Each answer: the relay's #start, then the `working` commit (ADR 0032); killed in between on the second.
    const job = leftRunning(world, { mode: "async", attempts: 1, state: "working", started: true });
    world.store.transitions.requeue(job.id, { reason: "target connection lost mid-generation" });
    world.store.transitions.transition(job.id, "loading", { incrementAttempts: true });
    const relay = RelayWriter.open(world.dataDir, job.id);
    relay.start({ attempt: 2, status: 200, content_type: "application/x-ndjson" });
    relay.data('{"message":{"content":"second"},"done":false}');
    relay.close();
    // And one killed before its target answered: no #start of its own, so no `working`.
    const waiting = leftRunning(world, { mode: "async", attempts: 1, state: "loading", started: false });

    recoverInterruptedJobs({
      store: world.store,
      outcomes: world.outcomes,
      logger: world.log.logger,
      dataDir: world.dataDir,
    });
    const moves = (id: string) => world.store.transitions.history(id).map((m) => m.to_state);
    expect(moves(job.id)).to.deep.equal(["queued", "loading", "working", "queued", "loading", "working", "failed"]);
    expect(moves(waiting.id)).to.deep.equal(["queued", "loading", "queued"]);
  });

  it("finds nothing to do when no job was left running", () => {
    const world = h.world();
    world.createJob();
    expect(
      recoverInterruptedJobs({
        store: world.store,
        outcomes: world.outcomes,
        logger: world.log.logger,
        dataDir: world.dataDir,
      }),
    ).to.equal(0);
  });

  it("records nothing without the lease: another worker owns the jobs it finds", () => {
    const world = h.world();
    const jobs = [
      leftRunning(world, { mode: "async", attempts: 1, state: "working", started: true }),
      leftRunning(world, { mode: "sync", attempts: 1, state: "working", started: true }),
    ];
    world.store.db.prepare("UPDATE worker_lease SET worker_id = 'another-worker'").run();
    expect(() =>
      recoverInterruptedJobs({
        store: world.store,
        outcomes: world.outcomes,
        logger: world.log.logger,
        dataDir: world.dataDir,
      }),
    ).to.throw(LeaseLostError);
    for (const job of jobs) {
      expect(world.store.jobs.get(job.id)).to.deep.equal(job);
      expect(world.relayEnds(job.id)).to.deep.equal([]);
    }
  });
});
