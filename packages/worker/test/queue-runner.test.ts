import type { JobState } from "@foreman/shared";
import { expect } from "chai";
import type { SimulatorOptions } from "../../ollama-sim/src/index.js";
import { createJobRunner } from "../src/job-runner.js";
import { createModelResidency } from "../src/model-residency.js";
import { createQueueRunner, type QueueRunnerOptions } from "../src/queue-runner.js";
import { CHAT_REQUEST, harness, nextEvent } from "./harness.js";

const LONG_CHAT = { ...CHAT_REQUEST, options: { num_predict: 100_000 } };

/** Lets the promise callbacks already due run (the claim loop's bookkeeping after a run), and nothing else. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("queue-runner", () => {
  const h = harness();

  /** The claim loop over a real runner, store and simulator, as the worker wires them. */
  async function setup(
    options: { sim?: SimulatorOptions; now?: () => number } & Partial<
      Pick<QueueRunnerOptions, "isActive" | "cancelCheckMs" | "pollMs">
    > = {},
  ) {
    const sim = await h.sim(options.sim);
    const world = h.world(options.now ? { now: options.now } : {});
    const client = h.client(sim.url);
    const residency = createModelResidency({ client, logger: world.log.logger, embedModel: "nomic-embed-text" });
    const runner = createJobRunner({
      client,
      claim: (jobId) => world.store.claims.claimQueued(world.workerId, jobId),
      jobs: world.store.jobs,
      outcomes: world.outcomes,
      residency,
      logger: world.log.logger,
      dataDir: world.dataDir,
    });
    // The target poller's part: down once a job found it unreachable, up when the test says so.
    const target = { up: true, downCalls: 0 };
    const queue = createQueueRunner({
      store: world.store,
      runner,
      targetUp: () => target.up,
      onUnreachable: () => {
        target.up = false;
        target.downCalls++;
      },
      resident: () => residency.resident(),
      logger: world.log.logger,
      workerId: world.workerId,
      isActive: options.isActive ?? (() => true),
      pollMs: options.pollMs ?? 600_000,
      starvationMs: 600_000,
      ...(options.cancelCheckMs !== undefined ? { cancelCheckMs: options.cancelCheckMs } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    h.defer(() => queue.stop(0));
    return { sim, world, runner, residency, queue, target };
  }

  it("drains the queue in drain-by-model order, one job at a time, loading each model once", async () => {
    const { sim, world, queue } = await setup();
    const a = world.createJob({ model: "llama3.2" });
    const b = world.createJob({ model: "qwen3:8b", request: { ...CHAT_REQUEST, model: "qwen3:8b" } });
    const c = world.createJob({ model: "llama3.2" });
    const claimedOrder: string[] = [];
    const running = new Set<string>();
    let mostAtOnce = 0;
    const allDone = new Promise<void>((resolve) => {
      const ended = new Set<string>();
      world.onTransition((job) => {
        const active: JobState[] = ["loading", "working"];
        if (job.state === "loading") claimedOrder.push(job.id);
        if (active.includes(job.state)) running.add(job.id);
        else running.delete(job.id);
        mostAtOnce = Math.max(mostAtOnce, running.size);
        if (job.state === "done") ended.add(job.id);
        if (ended.size === 3) resolve();
      });
    });
    queue.start();
    await allDone;
    // llama3.2 is resident after the first job, so the other llama3.2 job goes before the older qwen3 one.
    expect(claimedOrder).to.deep.equal([a.id, c.id, b.id]);
    expect(mostAtOnce).to.equal(1);
    expect(sim.stats().loads.byModel).to.deep.equal({ "llama3.2:latest": 1, "qwen3:8b": 1 });
  });

  it("a job whose wake-up was lost is claimed by the fallback poll", async () => {
    const { world, queue } = await setup({ pollMs: 50 });
    queue.start();
    // Committed with no kick at all, as if the gateway's wake-up never reached the worker.
    const job = world.createJob();
    await world.next(job.id, "done");
    expect(world.store.transitions.history(job.id).map((t) => t.to_state)).to.deep.equal([
      "queued",
      "loading",
      "working",
      "done",
    ]);
  });

  it("claims nothing while the target is down: one bounce, then it waits for targetUp and runs the job at once", async () => {
    const { sim, world, queue, target } = await setup();
    await sim.faults.refuseConnections(600_000);
    const job = world.createJob();
    const claims = () => world.store.transitions.history(job.id).filter((t) => t.to_state === "loading").length;
    const requeued = world.next(job.id, "queued");
    queue.kick();
    await requeued;
    await settle();
    expect(target.downCalls, "the job that found the target gone says so").to.equal(1);
    expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
    // Down: kicks (a gateway's wake-ups, the fallback poll) claim nothing, however many come.
    for (let i = 0; i < 5; i++) {
      queue.kick();
      await settle();
    }
    expect(claims(), "no churn while the target is down").to.equal(1);

    await sim.faults.clear();
    const done = world.next(job.id, "done");
    target.up = true;
    queue.targetUp();
    expect((await done).attempts, "the bounce cost no attempt").to.equal(1);
    expect(claims()).to.equal(2);
  });

  it("stop() lets the running job finish within the grace period, then claims nothing more", async () => {
    const { world, queue } = await setup({ sim: { tokensPerSecond: 200 } });
    const job = world.createJob({ request: { ...CHAT_REQUEST, options: { num_predict: 20 } } });
    const working = world.next(job.id, "working");
    queue.start();
    await working;
    await queue.stop(600_000);
    expect(world.store.jobs.get(job.id)!.state).to.equal("done");
    const later = world.createJob();
    queue.kick();
    expect(world.store.jobs.get(later.id)!.state).to.equal("queued");
  });

  it("stop() hands the running job back once the grace period is over", async () => {
    const { sim, world, queue } = await setup({ sim: { tokensPerSecond: 50 } });
    const job = world.createJob({ request: LONG_CHAT });
    const working = world.next(job.id, "working");
    queue.start();
    await working;
    const aborted = nextEvent(sim, (e) => e.type === "abort");
    await queue.stop(20);
    expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
    expect(await world.log.waitFor(/^grace period over/)).to.include({ job_id: job.id });
    await aborted; // the target's generation was stopped
  });

  it("a cancel reaches the running job through the periodic check, with no wake-up", async () => {
    const { sim, world, queue } = await setup({ sim: { tokensPerSecond: 50 }, cancelCheckMs: 10 });
    const job = world.createJob({ request: LONG_CHAT });
    const working = world.next(job.id, "working");
    queue.start();
    await working;
    const aborted = nextEvent(sim, (e) => e.type === "abort");
    const canceled = world.next(job.id, "canceled");
    world.store.transitions.requestCancel(job.id);
    await canceled;
    await aborted;
    expect(world.relayEnds(job.id)).to.deep.equal([{ state: "canceled", status: 499, error: "job canceled" }]);
  });

  it("claims nothing while this worker is not the active one", async () => {
    let active = false;
    const { world, queue } = await setup({ isActive: () => active });
    const job = world.createJob();
    queue.kick();
    expect(world.store.jobs.get(job.id)!.state).to.equal("queued");
    await settle();
    active = true;
    const done = world.next(job.id, "done");
    queue.kick();
    await done;
  });
});
