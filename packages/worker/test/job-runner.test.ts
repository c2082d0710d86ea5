import fs from "node:fs";
import path from "node:path";
import { type JobMode, type NewJob, relayTranscript } from "@foreman/shared";
import { expect } from "chai";
import type { SimulatorOptions } from "../../ollama-sim/src/index.js";
import { createJobRunner } from "../src/job-runner.js";
import { createModelResidency } from "../src/model-residency.js";
import { CHAT_REQUEST, harness, nextEvent, type World, within } from "./harness.js";

/** A chat that takes minutes at the simulator's pace: it is still streaming whatever the test does to it. */
const LONG_CHAT = { ...CHAT_REQUEST, options: { num_predict: 100_000 } };

describe("job-runner", () => {
  const h = harness();

  /**
   * A runner wired as the worker wires it: real store, relay directory and target client. `afterClaim`
   * runs right after each claim, to act at that moment (a cancel, a lost lease).
   */
  function wire(world: World, targetUrl: string, afterClaim: (jobId: string) => void = () => undefined) {
    const client = h.client(targetUrl);
    const residency = createModelResidency({ client, logger: world.log.logger, embedModel: "nomic-embed-text" });
    const runner = createJobRunner({
      client,
      claim: (jobId) => {
        const claimed = world.store.claims.claimQueued(world.workerId, jobId);
        afterClaim(jobId);
        return claimed;
      },
      jobs: world.store.jobs,
      outcomes: world.outcomes,
      residency,
      logger: world.log.logger,
      dataDir: world.dataDir,
    });
    return { client, residency, runner };
  }

  /** The runner against the simulator, and a way to queue and pick a job as the queue runner would. */
  async function setup(simOptions: SimulatorOptions = {}, afterClaim?: (world: World, jobId: string) => void) {
    const sim = await h.sim(simOptions);
    const world = h.world();
    const picked = (overrides: Partial<NewJob> = {}) => {
      world.createJob(overrides);
      return world.pick();
    };
    return { sim, world, picked, ...wire(world, sim.url, afterClaim && ((jobId) => afterClaim(world, jobId))) };
  }

  describe("a target that answers", () => {
    it("streams a chat to done: #start, the target's chunks as they came, #end; result, metrics and artifacts stored", async () => {
      const { world, runner, residency, picked } = await setup();
      const job = picked();
      const running = runner.run(job);
      expect(runner.currentJobId()).to.equal(job.id);
      runner.checkCancel(); // nobody asked: nothing happens
      expect(await running).to.equal("done");
      expect(runner.currentJobId()).to.equal(null);

      const lines = world.relayLines(job.id);
      expect(lines[0]).to.equal('#start {"attempt":1,"status":200,"content_type":"application/x-ndjson"}');
      expect(lines.at(-1)).to.equal('#end {"state":"done"}');
      const chunks = lines.slice(1, -1).map((l) => JSON.parse(l) as { message: { content: string }; done: boolean });
      expect(chunks.length).to.be.greaterThan(1);
      expect(chunks.map((c) => c.done)).to.deep.equal([...chunks.slice(1).map(() => false), true]);

      const after = world.store.jobs.get(job.id)!;
      expect(after.state).to.equal("done");
      const result = after.result as { message: { content: string }; done: boolean };
      expect(result.done).to.equal(true);
      expect(result.message.content).to.equal(chunks.map((c) => c.message.content).join(""));
      expect(after.metrics).to.include({ eval_count: 3 });
      expect(world.store.artifacts.forJob(job.id).map((a) => a.name)).to.deep.equal([
        "result.json",
        "transcript.ndjson",
      ]);
      expect(relayTranscript(world.dataDir, job.id)).to.equal(
        lines
          .slice(1, -1)
          .map((l) => `${l}\n`)
          .join(""),
      );
      expect(residency.resident(), "the target holds the job's model now").to.deep.equal({
        model: "llama3.2:latest",
        runnerOptions: "",
      });
    });

    it("relays a stream:false answer as one body, and an OpenAI stream as its SSE payloads", async () => {
      const { world, runner, picked } = await setup();
      const whole = picked({ kind: "generate", request: { model: "llama3.2", prompt: "hi", stream: false } });
      expect(await runner.run(whole)).to.equal("done");
      const wholeLines = world.relayLines(whole.id);
      expect(wholeLines).to.have.length(3);
      expect(JSON.parse(wholeLines[0]!.slice(7))).to.include({ content_type: "application/json; charset=utf-8" });
      expect(JSON.parse(wholeLines[1]!)).to.deep.equal(world.store.jobs.get(whole.id)!.result);

      const sse = picked({
        api: "openai",
        request: { model: "llama3.2", messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 3 },
      });
      expect(await runner.run(sse)).to.equal("done");
      const sseLines = world.relayLines(sse.id);
      expect(JSON.parse(sseLines[0]!.slice(7))).to.include({ content_type: "text/event-stream" });
      const payloads = sseLines.slice(1, -1);
      expect(payloads.every((l) => l.startsWith("{") && JSON.parse(l).object === "chat.completion.chunk")).to.equal(
        true,
      );
      expect(sseLines.at(-1)).to.equal('#end {"state":"done"}');
      expect(world.store.jobs.get(sse.id)!.result).to.include({ finish_reason: "length" });
    });
  });

  describe("the claim", () => {
    /** A runner whose claim first does `before` (to the still-queued job), and which records the order of calls. */
    async function withClaim(
      before: (world: World, jobId: string) => void,
      job: Partial<NewJob> = {},
      /** Runs as the model is made ready for the job, before its request is sent. */
      preparing: (world: World) => void = () => undefined,
    ) {
      const sim = await h.sim();
      const world = h.world();
      const client = h.client(sim.url);
      const residency = createModelResidency({ client, logger: world.log.logger, embedModel: "nomic-embed-text" });
      const calls: string[] = [];
      const runner = createJobRunner({
        client: {
          openStream: (...args: Parameters<typeof client.openStream>) => {
            calls.push("request");
            return client.openStream(...args);
          },
        },
        claim: (jobId) => {
          calls.push("claim");
          before(world, jobId);
          return world.store.claims.claimQueued(world.workerId, jobId);
        },
        jobs: world.store.jobs,
        outcomes: world.outcomes,
        residency: {
          ...residency,
          async prepareFor(key) {
            preparing(world);
            await residency.prepareFor(key);
          },
        },
        logger: world.log.logger,
        dataDir: world.dataDir,
      });
      world.createJob({ mode: "sync", request: LONG_CHAT, ...job });
      return { sim, world, runner, calls, job: world.pick() };
    }

    it("is made after the picked job's request has gone to the target; the run goes on with the claimed job", async () => {
      const { world, runner, calls, job } = await withClaim(() => undefined, { request: CHAT_REQUEST });
      expect(job).to.include({ state: "queued", attempts: 0 });
      expect(await runner.run(job)).to.equal("done");
      expect(calls).to.deep.equal(["request", "claim"]);
      expect(world.store.jobs.get(job.id)).to.include({ state: "done", attempts: 1 });
      const moves = world.store.transitions.history(job.id).map((t) => t.to_state);
      expect(moves).to.deep.equal(["queued", "loading", "working", "done"]);
      expect(world.relayLines(job.id)[0]).to.match(/^#start \{"attempt":1,/);
    });

    it("a job canceled between its pick and its claim is not run: 'unclaimed', its request aborted, nothing recorded", async () => {
      const { sim, world, runner, calls, job } = await withClaim((w, id) => w.store.transitions.requestCancel(id));
      const ended = nextEvent(sim, (e) => e.type === "request-end" && e.path === "/api/chat");
      expect(await runner.run(job)).to.equal("unclaimed");
      expect(calls).to.deep.equal(["request", "claim"]);
      expect(world.store.jobs.get(job.id)).to.include({ state: "canceled", attempts: 0 });
      expect(world.store.transitions.history(job.id).map((t) => t.to_state)).to.deep.equal(["queued", "canceled"]);
      expect(world.relayLines(job.id)).to.deep.equal([]);
      expect(await within(ended, 10_000, "the target's answer is released")).to.include({ aborted: true });
    });

    it("a claim the database refuses rejects the run (the claim loop stops and logs it), and aborts the request", async () => {
      const { sim, world, runner, job } = await withClaim(() => {
        throw new Error("database is locked");
      });
      const ended = nextEvent(sim, (e) => e.type === "request-end" && e.path === "/api/chat");
      let thrown: unknown;
      await runner.run(job).catch((err: unknown) => {
        thrown = err;
      });
      expect((thrown as Error).message).to.equal("database is locked");
      expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
      expect(await within(ended, 10_000, "the target's answer is released")).to.include({ aborted: true });
    });

    it("a job canceled while its model is made ready is not sent at all: 'unclaimed', nothing recorded", async () => {
      const { world, runner, calls, job } = await withClaim(
        () => undefined,
        {},
        (w) => w.store.transitions.requestCancel(w.pick().id),
      );
      expect(await runner.run(job)).to.equal("unclaimed");
      expect(calls, "neither a request nor a claim").to.deep.equal([]);
      expect(world.store.transitions.history(job.id).map((t) => t.to_state)).to.deep.equal(["queued", "canceled"]);
    });

    it("after a claim the database refused, the next run claims before it sends, until a claim succeeds", async () => {
      let refuse = true;
      const { world, runner, calls, job } = await withClaim(
        () => {
          if (refuse) {
            refuse = false;
            throw new Error("database is locked");
          }
        },
        { request: CHAT_REQUEST },
      );
      await runner.run(job).catch(() => undefined);
      expect(calls).to.deep.equal(["request", "claim"]);
      expect(await runner.run(world.pick())).to.equal("done");
      expect(calls.slice(2), "claimed first, then sent").to.deep.equal(["claim", "request"]);
      world.createJob({ request: CHAT_REQUEST });
      expect(await runner.run(world.pick())).to.equal("done");
      expect(calls.slice(4), "back to sending first").to.deep.equal(["request", "claim"]);
    });

    it("a lease lost before the claim: 'unclaimed', the job still queued with no attempt spent, its request aborted", async () => {
      const { sim, world, runner, job } = await withClaim((w) =>
        w.store.db.prepare("UPDATE worker_lease SET worker_id = 'another-worker'").run(),
      );
      const ended = nextEvent(sim, (e) => e.type === "request-end" && e.path === "/api/chat");
      expect(await runner.run(job)).to.equal("unclaimed");
      expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
      expect(world.store.transitions.history(job.id).map((t) => t.to_state)).to.deep.equal(["queued"]);
      expect(await within(ended, 10_000, "the target's answer is released")).to.include({ aborted: true });
    });
  });

  describe("a target that does not answer", () => {
    it("unreachable: the job goes back to the queue with its attempt refunded, and the run says 'unreachable'", async () => {
      const { sim, world, runner, picked } = await setup();
      await sim.faults.refuseConnections(600_000);
      const job = picked();
      expect(job).to.include({ state: "queued", attempts: 0 });
      expect(await runner.run(job)).to.equal("unreachable");
      expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
      expect(world.store.transitions.history(job.id).at(-1)!.reason).to.match(/^target unreachable: ECONNREFUSED/);
      expect(world.relayLines(job.id), "nothing for a caller: it keeps waiting").to.deep.equal([]);
    });

    it("unreachable with a cancel pending: canceled, and the relay tells its followers", async () => {
      // The cancel arrives once the job is claimed (running), so it is only flagged; the requeue honours it.
      const { sim, world, runner, picked } = await setup({}, (w, id) => w.store.transitions.requestCancel(id));
      await sim.faults.refuseConnections(600_000);
      const job = picked({ mode: "sync" });
      expect(await runner.run(job)).to.equal("canceled");
      expect(world.store.jobs.get(job.id)!.state).to.equal("canceled");
      expect(world.relayEnds(job.id)).to.deep.equal([{ state: "canceled", status: 499, error: "job canceled" }]);
    });

    it("a 404: failed with the target's status, and its body byte for byte on the relay's end", async () => {
      const { world, runner, picked } = await setup();
      const job = picked({ model: "nosuch", request: { model: "nosuch", messages: [] } });
      expect(await runner.run(job)).to.equal("failed");
      expect(world.store.jobs.get(job.id)).to.include({
        state: "failed",
        error: "model 'nosuch' not found",
        errorStatus: 404,
      });
      expect(world.relayLines(job.id)).to.have.length(1);
      expect(world.relayEnds(job.id)).to.deep.equal([
        {
          state: "failed",
          status: 404,
          error: "model 'nosuch' not found",
          body: `{"error":"model 'nosuch' not found"}`,
          content_type: "application/json; charset=utf-8",
        },
      ]);
    });
  });

  describe("a stream that breaks off", () => {
    it("requeues an async job with attempts left, keeping its attempt; the next attempt's transcript is its own", async () => {
      const { sim, world, runner, residency, picked } = await setup();
      sim.faults.dieMidStream({ afterChunks: 2, count: 1, pathPrefix: "/api/chat" });
      const job = picked();
      expect(await runner.run(job)).to.equal("requeued");
      expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 1 });
      const cut = world.relayLines(job.id);
      expect(cut[0]).to.match(/^#start \{"attempt":1,/);
      expect(world.relayEnds(job.id), "no end: the next attempt continues the relay").to.deep.equal([]);
      expect(world.store.transitions.history(job.id).at(-1)!.reason).to.match(/^target connection lost mid-generation/);
      expect(residency.resident(), "what the target holds is unknown after a break").to.equal(null);

      const again = world.pick();
      expect(again).to.include({ id: job.id, state: "queued", attempts: 1 });
      expect(await runner.run(again)).to.equal("done");
      const lines = world.relayLines(job.id);
      const secondStart = lines.findIndex((l) => l.startsWith('#start {"attempt":2,'));
      expect(secondStart).to.equal(cut.length);
      const transcript = relayTranscript(world.dataDir, job.id);
      expect(transcript).to.equal(
        lines
          .slice(secondStart + 1, -1)
          .map((l) => `${l}\n`)
          .join(""),
      );
    });

    for (const [mode, maxAttempts, error] of [
      ["sync", 3, /^target connection lost mid-generation: /],
      ["async", 1, /; attempt limit \(1\) reached$/],
    ] as Array<[JobMode, number, RegExp]>) {
      it(`fails ${mode === "sync" ? "a sync job whose caller has bytes" : "an async job on its last attempt"} with 502`, async () => {
        const { sim, world, runner, picked } = await setup();
        sim.faults.dieMidStream({ afterChunks: 1, count: 1, pathPrefix: "/api/chat" });
        const job = picked({ mode, maxAttempts });
        expect(await runner.run(job)).to.equal("failed");
        const after = world.store.jobs.get(job.id)!;
        expect(after).to.include({ state: "failed", errorStatus: 502 });
        expect(after.error).to.match(error);
        expect(world.relayEnds(job.id)).to.deep.equal([{ state: "failed", status: 502, error: after.error }]);
      });
    }

    it("treats a stream that ends cleanly but without its final chunk as broken off", async () => {
      const world = h.world();
      const target = await h.loopback((req, res) => {
        if (req.url === "/api/ps") return res.writeHead(200).end('{"models":[]}');
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.end('{"message":{"content":"half"},"done":false}\n');
      });
      const { runner } = wire(world, target.url);
      world.createJob({ mode: "sync" });
      const job = world.pick();
      expect(await runner.run(job)).to.equal("failed");
      expect(world.relayEnds(job.id)).to.deep.equal([
        { state: "failed", status: 502, error: "target ended the stream before its final chunk" },
      ]);
    });
  });

  describe("a caller's cancel", () => {
    it("checkCancel aborts the target's generation mid-stream and ends the job canceled", async () => {
      const { sim, world, runner, picked } = await setup({ tokensPerSecond: 50 });
      const job = picked({ mode: "sync", request: LONG_CHAT });
      const working = world.next(job.id, "working");
      const running = runner.run(job);
      await working;
      expect(world.store.transitions.requestCancel(job.id).outcome).to.equal("requested");
      const aborted = nextEvent(sim, (e) => e.type === "abort" && e.path === "/api/chat");
      runner.checkCancel();
      expect(await running).to.equal("canceled");
      await within(aborted, 10_000, "the simulator sees the generation aborted");
      expect(world.store.jobs.get(job.id)!.state).to.equal("canceled");
      expect(world.relayEnds(job.id)).to.deep.equal([{ state: "canceled", status: 499, error: "job canceled" }]);
      expect(world.relayLines(job.id).at(-1)).to.match(/^#end /);
    });

    it("a cancel before the target answered (a hung target) ends the job canceled too", async () => {
      const { sim, world, runner, picked } = await setup();
      const hung = nextEvent(sim, (e) => e.type === "hang");
      sim.faults.hang({ count: 1, pathPrefix: "/api/chat" });
      const job = picked();
      const running = runner.run(job);
      await hung;
      world.store.transitions.requestCancel(job.id);
      runner.checkCancel();
      expect(await running).to.equal("canceled");
      expect(world.store.jobs.get(job.id)!.state).to.equal("canceled");
      expect(world.relayLines(job.id)).to.deep.equal(['#end {"state":"canceled","status":499,"error":"job canceled"}']);
    });
  });

  describe("shutdown", () => {
    async function midStream(mode: JobMode) {
      const s = await setup({ tokensPerSecond: 50 });
      const job = s.picked({ mode, request: LONG_CHAT });
      const working = s.world.next(job.id, "working");
      const running = s.runner.run(job);
      await working;
      return { ...s, job, running };
    }

    it("hands an async job back mid-stream: requeued with its attempt refunded, no end line", async () => {
      const { world, runner, job, running } = await midStream("async");
      await runner.abortForShutdown();
      expect(await running).to.equal("requeued");
      expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
      expect(world.store.transitions.history(job.id).at(-1)!.reason).to.equal("worker shutting down");
      expect(world.relayEnds(job.id)).to.deep.equal([]);
      expect(runner.currentJobId()).to.equal(null);
    });

    it("fails a sync job whose caller has bytes, with a 503 on the relay", async () => {
      const { world, runner, job, running } = await midStream("sync");
      await runner.abortForShutdown();
      expect(await running).to.equal("failed");
      expect(world.store.jobs.get(job.id)).to.include({ state: "failed", errorStatus: 503 });
      expect(world.relayEnds(job.id)).to.deep.equal([
        { state: "failed", status: 503, error: "worker shut down mid-generation" },
      ]);
    });

    it("requeues even a sync job whose target had not answered yet: its caller keeps waiting", async () => {
      const { sim, world, runner, picked } = await setup();
      const hung = nextEvent(sim, (e) => e.type === "hang");
      sim.faults.hang({ count: 1, pathPrefix: "/api/chat" });
      const job = picked({ mode: "sync" });
      const running = runner.run(job);
      await hung;
      await runner.abortForShutdown();
      expect(await running).to.equal("requeued");
      expect(world.store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
      expect(world.relayLines(job.id)).to.deep.equal([]);
    });

    it("a cancel requested before the shutdown wins: canceled, not handed back", async () => {
      const { world, runner, job, running } = await midStream("async");
      world.store.transitions.requestCancel(job.id);
      runner.checkCancel();
      await runner.abortForShutdown();
      expect(await running).to.equal("canceled");
      expect(world.store.jobs.get(job.id)!.state).to.equal("canceled");
    });
  });

  describe("the unexpected", () => {
    it("an unexpected error fails the job with 500, releases the target's answer, and the runner goes on", async () => {
      const { sim, world, runner, picked } = await setup({ tokensPerSecond: 50 });
      // The relay folder cannot be made: opening the job's relay throws once the target has answered.
      const relays = path.join(world.dataDir, "relays");
      fs.writeFileSync(relays, "a file where the folder should be");
      const job = picked({ request: LONG_CHAT });
      const ended = nextEvent(sim, (e) => e.type === "request-end" && e.path === "/api/chat");
      expect(await runner.run(job)).to.equal("failed");
      const after = world.store.jobs.get(job.id)!;
      expect(after).to.include({ state: "failed", errorStatus: 500 });
      expect(after.error).to.match(/^worker error: /);
      expect(await world.log.waitFor("job run failed unexpectedly")).to.include({ job_id: job.id });
      // The target must not go on generating into an answer nobody reads.
      expect(await within(ended, 10_000, "the target's answer is released")).to.include({ aborted: true });

      fs.rmSync(relays);
      const next = picked();
      expect(await runner.run(next)).to.equal("done");
      expect(world.relayLines(next.id).at(-1)).to.equal('#end {"state":"done"}');
    });

    it("a lease lost mid-job: the job is left to the active worker, nothing is recorded, the answer is released", async () => {
      const loseLease = (w: World) => w.store.db.prepare("UPDATE worker_lease SET worker_id = 'another-worker'").run();
      const { sim, world, runner, picked } = await setup({}, loseLease);
      const job = picked();
      const ended = nextEvent(sim, (e) => e.type === "request-end" && e.path === "/api/chat");
      expect(await runner.run(job)).to.equal("requeued");
      expect(world.store.jobs.get(job.id)).to.include({ state: "loading", attempts: 1 });
      expect(world.store.transitions.history(job.id).map((t) => t.to_state)).to.deep.equal(["queued", "loading"]);
      expect(world.relayLines(job.id)).to.deep.equal([]);
      expect(await world.log.waitFor(/lost the worker lease mid-job/)).to.include({ job_id: job.id });
      await within(ended, 10_000, "the target's answer is released");
    });
  });
});
