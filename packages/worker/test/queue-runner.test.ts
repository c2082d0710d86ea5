import type { JobState } from "@foreman/shared";
import { expect } from "chai";
import type { SimulatorOptions } from "../../ollama-sim/src/index.js";
import { createJobRunner } from "../src/job-runner.js";
import { createModelResidency } from "../src/model-residency.js";
import { createQueueRunner, type QueueRunnerOptions } from "../src/queue-runner.js";
import { CHAT_REQUEST, harness, nextEvent } from "./harness.js";

const LONG_CHAT = { ...CHAT_REQUEST, options: { num_predict: 100_000 } };

/** A clock the test moves by hand. */
function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** Lets the promise callbacks already due run (the claim loop's bookkeeping after a run), and nothing else. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("queue-runner", () => {
  const h = harness();

  /** The claim loop over a real runner, store and simulator, as the worker wires them. */
  async function setup(
    options: { sim?: SimulatorOptions; now?: () => number } & Partial<
      Pick<QueueRunnerOptions, "isActive" | "cancelCheckMs">
    > = {},
  ) {
    const sim = await h.sim(options.sim);
    const world = h.world(options.now ? { now: options.now } : {});
    const client = h.client(sim.url);
    const residency = createModelResidency({ client, logger: world.log.logger, embedModel: "nomic-embed-text" });
    const runner = createJobRunner({
      client,
      jobs: world.store.jobs,
      outcomes: world.outcomes,
      residency,
      logger: world.log.logger,
      dataDir: world.dataDir,
    });
    const queue = createQueueRunner({
      store: world.store,
      runner,
      residentModel: () => residency.resident(),
      logger: world.log.logger,
      workerId: world.workerId,
      isActive: options.isActive ?? (() => true),
      pollMs: 600_000,
      starvationMs: 600_000,
      ...(options.cancelCheckMs !== undefined ? { cancelCheckMs: options.cancelCheckMs } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    h.defer(() => queue.stop(0));
    return { sim, world, runner, residency, queue };
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

  it("backs off exponentially while the target is unreachable, without claiming again; targetUp retries at once", async () => {
    const clock = fakeClock();
    const { sim, world, queue } = await setup({ now: clock.now });
    await sim.faults.refuseConnections(600_000);
    const job = world.createJob();
    const claims = () => world.store.transitions.history(job.id).filter((t) => t.to_state === "loading").length;
    /** Kicks the loop; when it claims, waits until the run is back in the queue and the loop has returned. */
    const kick = async () => {
      const requeued = world.next(job.id, "queued");
      const before = claims();
      queue.kick();
      // The claim happens synchronously inside kick(), so a claim not made by now will not be made.
      const claimed = claims() > before;
      if (claimed) await requeued;
      await settle();
      return claimed;
    };

    expect(await kick()).to.equal(true);
    expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
    expect(await kick(), "backing off: no claim, no churn").to.equal(false);
    clock.advance(249);
    expect(await kick()).to.equal(false);
    clock.advance(1);
    expect(await kick(), "250 ms on").to.equal(true);
    clock.advance(499);
    expect(await kick(), "the next wait is twice as long").to.equal(false);
    clock.advance(1);
    expect(await kick()).to.equal(true);
    expect(claims()).to.equal(3);
    expect(world.store.transitions.history(job.id).filter((t) => t.to_state === "queued")).to.have.length(4);

    // The target is back: no waiting out the backoff.
    await sim.faults.clear();
    const done = world.next(job.id, "done");
    queue.targetUp();
    expect((await done).attempts, "the unreachable runs cost no attempt").to.equal(1);
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
