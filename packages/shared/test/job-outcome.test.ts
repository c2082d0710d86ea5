import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { expect } from "chai";
import { artifactDir } from "../src/artifact-files.js";
import {
  cancelByCaller,
  createJobOutcomes,
  type JobOutcomes,
  relayStarted,
  retriesAfterInterruption,
} from "../src/job-outcome.js";
import { createLogger } from "../src/logger.js";
import { type RelayEnd, RelayWriter, relayPath, relayTranscript } from "../src/relay.js";
import type { JobMode, JobRecord } from "../src/store/jobs.js";
import { openStore, type Store } from "../src/store/store.js";
import { LeaseLostError } from "../src/store/worker-lease.js";
import { fakeClock } from "./store/helpers.js";

const NDJSON = "application/x-ndjson";

describe("job-outcome: the retry rule", () => {
  // Every combination of the three inputs, with the answer the rule gives and why.
  const table: Array<[JobMode, boolean, number, boolean, string]> = [
    ["async", false, 1, true, "attempts left"],
    ["async", true, 1, true, "an async job has no caller holding bytes"],
    ["async", false, 3, false, "attempt limit reached"],
    ["async", true, 3, false, "attempt limit reached"],
    ["sync", false, 1, true, "its caller has received nothing and keeps waiting"],
    ["sync", true, 1, false, "its caller's stream cannot be resumed"],
    ["sync", false, 3, false, "attempt limit reached"],
    ["sync", true, 3, false, "both"],
  ];
  for (const [mode, started, attempts, retries, why] of table) {
    it(`${mode}, relay ${started ? "started" : "not started"}, attempt ${attempts} of 3: ${retries ? "retries" : "ends"} (${why})`, () => {
      expect(retriesAfterInterruption({ mode, attempts, maxAttempts: 3 }, started)).to.equal(retries);
    });
  }
});

describe("job-outcome", () => {
  let dataDir: string;
  let store: Store;
  let outcomes: JobOutcomes;
  let logged: Array<{ level: string; message: string }>;
  const clock = fakeClock();

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-outcome-"));
    store = openStore({ dbPath: path.join(dataDir, "foreman.db"), now: clock.now });
    store.workerLease.tryAcquire({ workerId: "w1", pid: process.pid, hostname: "test-host" });
    logged = [];
    const stream = new PassThrough({ objectMode: false });
    stream.on("data", (d: Buffer) => {
      for (const l of d.toString().split("\n").filter(Boolean)) logged.push(JSON.parse(l));
    });
    outcomes = createJobOutcomes({
      transitions: store.transitions.forWorker("w1"),
      artifacts: store.artifacts,
      dataDir,
      logger: createLogger({ service: "worker", stream }),
      inlineResultMaxBytes: 64,
    });
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** A job the worker holds in `state`, on its `attempts`-th attempt (set up without the lease check). */
  function running(
    options: { mode?: JobMode; attempts?: number; maxAttempts?: number; state?: "loading" | "working" } = {},
  ): JobRecord {
    const job = store.transitions.createJob({
      kind: "chat",
      api: "ollama",
      mode: options.mode ?? "async",
      model: "llama3.2",
      request: { model: "llama3.2", messages: [] },
      maxAttempts: options.maxAttempts ?? 3,
    });
    const attempts = options.attempts ?? 1;
    for (let i = 1; i <= attempts; i++) {
      store.transitions.transition(job.id, "loading", { incrementAttempts: true });
      if (i < attempts) store.transitions.requeue(job.id, { reason: "earlier attempt" });
    }
    if (options.state === "working") store.transitions.transition(job.id, "working");
    return store.jobs.get(job.id)!;
  }

  const relayText = (id: string) =>
    fs.existsSync(relayPath(dataDir, id)) ? fs.readFileSync(relayPath(dataDir, id), "utf8") : "";
  const relayLines = (id: string) => relayText(id).split("\n").filter(Boolean);
  const endLines = (id: string): RelayEnd[] =>
    relayLines(id)
      .filter((l) => l.startsWith("#end "))
      .map((l) => JSON.parse(l.slice(5)) as RelayEnd);
  const startedRelay = (job: JobRecord, ...data: string[]) => {
    const relay = RelayWriter.open(dataDir, job.id);
    relay.start({ attempt: job.attempts, status: 200, content_type: NDJSON });
    for (const line of data) relay.data(line);
    return relay;
  };
  const flushLogs = () => new Promise((resolve) => setImmediate(resolve));

  describe("relayStarted", () => {
    it("is true only once the relay's first line is a #start", () => {
      const job = running();
      expect(relayStarted(dataDir, job.id), "no relay file").to.equal(false);
      fs.mkdirSync(path.dirname(relayPath(dataDir, job.id)), { recursive: true });
      fs.writeFileSync(relayPath(dataDir, job.id), "");
      expect(relayStarted(dataDir, job.id), "an empty relay").to.equal(false);
      fs.writeFileSync(relayPath(dataDir, job.id), "#sta");
      expect(relayStarted(dataDir, job.id), "half a control word").to.equal(false);
      fs.writeFileSync(relayPath(dataDir, job.id), '{"done":false}\n');
      expect(relayStarted(dataDir, job.id), "a data line first").to.equal(false);
      fs.writeFileSync(relayPath(dataDir, job.id), "");
      startedRelay(job).close();
      expect(relayStarted(dataDir, job.id)).to.equal(true);
    });
  });

  describe("interrupted: the rule applied to the store and the relay", () => {
    const cases: Array<{ mode: JobMode; started: boolean; attempts: number; ending: string; error?: RegExp }> = [
      { mode: "async", started: true, attempts: 1, ending: "requeued" },
      { mode: "async", started: false, attempts: 1, ending: "requeued" },
      { mode: "async", started: true, attempts: 2, ending: "failed", error: /^cut off; attempt limit \(2\) reached$/ },
      { mode: "sync", started: false, attempts: 1, ending: "requeued" },
      { mode: "sync", started: true, attempts: 1, ending: "failed", error: /^cut off$/ },
      { mode: "sync", started: false, attempts: 2, ending: "failed", error: /^cut off; attempt limit \(2\) reached$/ },
    ];
    for (const c of cases) {
      it(`${c.mode}, relay ${c.started ? "started" : "not started"}, attempt ${c.attempts} of 2 → ${c.ending}`, () => {
        const job = running({
          mode: c.mode,
          attempts: c.attempts,
          maxAttempts: 2,
          state: c.started ? "working" : "loading",
        });
        const relay = c.started ? startedRelay(job, '{"done":false}') : null;
        const ending = outcomes.interrupted(job, relay, { error: "cut off", status: 502, relayStarted: c.started });
        expect(ending).to.equal(c.ending);
        const after = store.jobs.get(job.id)!;
        if (c.ending === "requeued") {
          expect(after).to.include({ state: "queued", attempts: c.attempts, error: null });
          expect(endLines(job.id), "a requeued job's relay stays open for the next attempt").to.deep.equal([]);
          expect(store.transitions.history(job.id).at(-1)).to.include({ to_state: "queued", reason: "cut off" });
        } else {
          expect(after).to.include({ state: "failed", errorStatus: 502 });
          expect(after.error).to.match(c.error!);
          expect(endLines(job.id)).to.deep.equal([{ state: "failed", status: 502, error: after.error }]);
        }
        if (relay) expect(() => relay.data("{}"), "every ending closes the writer").to.throw(/closed/);
      });
    }
  });

  describe("requeued", () => {
    it("refunds the attempt only when asked (nothing was tried)", () => {
      const refunded = running({ attempts: 2 });
      expect(outcomes.requeued(refunded, null, { reason: "target unreachable", refundAttempt: true })).to.equal(
        "requeued",
      );
      expect(store.jobs.get(refunded.id)).to.include({ state: "queued", attempts: 1 });
      const kept = running({ attempts: 2 });
      outcomes.requeued(kept, null, { reason: "cut off" });
      expect(store.jobs.get(kept.id)).to.include({ state: "queued", attempts: 2 });
      expect(relayText(refunded.id) + relayText(kept.id)).to.equal("");
    });

    it("honours a cancel requested meanwhile: canceled, with the relay's end line", () => {
      const job = running({ state: "working" });
      const relay = startedRelay(job, '{"done":false}');
      expect(store.transitions.requestCancel(job.id).outcome).to.equal("requested");
      expect(outcomes.requeued(job, relay, { reason: "worker shutting down", refundAttempt: true })).to.equal(
        "canceled",
      );
      expect(store.jobs.get(job.id)!.state).to.equal("canceled");
      expect(endLines(job.id)).to.deep.equal([{ state: "canceled", status: 499, error: "job canceled" }]);
      expect(store.transitions.history(job.id).at(-1)).to.include({
        to_state: "canceled",
        reason: "canceled while running",
      });
    });

    it("writes the cancel's end line even when the job had no relay yet", () => {
      const job = running();
      store.transitions.requestCancel(job.id);
      expect(outcomes.requeued(job, null, { reason: "target unreachable", refundAttempt: true })).to.equal("canceled");
      expect(relayLines(job.id)).to.deep.equal(['#end {"state":"canceled","status":499,"error":"job canceled"}']);
    });
  });

  describe("working and done", () => {
    it("answered writes the relay's #start with the attempt, status and framing; working records the state", () => {
      const job = running({ attempts: 2 });
      const relay = RelayWriter.open(dataDir, job.id);
      outcomes.answered(job, relay, { status: 200, contentType: NDJSON });
      relay.data('{"n":1}');
      expect(store.jobs.get(job.id)!.state).to.equal("loading");
      outcomes.working(job);
      relay.close();
      expect(store.jobs.get(job.id)!.state).to.equal("working");
      expect(relayLines(job.id)).to.deep.equal([
        `#start {"attempt":2,"status":200,"content_type":"${NDJSON}"}`,
        '{"n":1}',
      ]);
    });

    it("done stores result.json and the last attempt's transcript, then ends the relay once", () => {
      const job = running({ attempts: 2, state: "working" });
      const first = RelayWriter.open(dataDir, job.id);
      first.start({ attempt: 1, status: 200, content_type: NDJSON });
      first.data('{"n":"attempt 1, cut short"}');
      first.close();
      const relay = startedRelay(job, '{"n":1}', '{"n":2,"done":true}');
      const result = { message: { content: "x".repeat(100) }, done: true };
      expect(outcomes.done(job, relay, { result, metrics: { eval_count: 2 } })).to.equal("done");

      const after = store.jobs.get(job.id)!;
      expect(after).to.include({ state: "done" });
      expect(after.metrics).to.deep.equal({ eval_count: 2 });
      expect(after.result, "over the inline limit: served as the artifact only").to.equal(null);
      expect(store.artifacts.forJob(job.id).map((a) => [a.name, a.contentType, a.size])).to.deep.equal([
        ["result.json", "application/json", Buffer.byteLength(JSON.stringify(result))],
        ["transcript.ndjson", NDJSON, '{"n":1}\n{"n":2,"done":true}\n'.length],
      ]);
      const dir = artifactDir(dataDir, job.id);
      expect(JSON.parse(fs.readFileSync(path.join(dir, "result.json"), "utf8"))).to.deep.equal(result);
      // The transcript is the relay's last attempt, read from the relay: not a second copy in the folder.
      expect(fs.existsSync(path.join(dir, "transcript.ndjson"))).to.equal(false);
      expect(relayTranscript(dataDir, job.id)).to.equal('{"n":1}\n{"n":2,"done":true}\n');
      expect(endLines(job.id)).to.deep.equal([{ state: "done" }]);
      expect(relayLines(job.id).at(-1), "the end line is the relay's last").to.equal('#end {"state":"done"}');
    });

    it("inlines a result up to the limit in bytes, not characters", () => {
      // {"r":"…"} is 8 bytes around the text; "é" is two bytes in UTF-8.
      const fits = { r: "é".repeat(28) }; // 64 bytes
      const tooBig = { r: `${"é".repeat(28)}a` }; // 65 bytes, but only 37 characters
      expect(Buffer.byteLength(JSON.stringify(fits))).to.equal(64);
      expect(Buffer.byteLength(JSON.stringify(tooBig))).to.equal(65);
      for (const [result, inline] of [
        [fits, true],
        [tooBig, false],
      ] as const) {
        const job = running({ state: "working" });
        outcomes.done(job, null, { result, metrics: null });
        expect(store.jobs.get(job.id)!.result).to.deep.equal(inline ? result : null);
        expect(store.artifacts.get(job.id, "result.json")?.size).to.equal(Buffer.byteLength(JSON.stringify(result)));
        expect(store.artifacts.get(job.id, "transcript.ndjson"), "no relay data, no transcript").to.equal(null);
        expect(endLines(job.id)).to.deep.equal([{ state: "done" }]);
      }
    });

    it("keeps a job done, its result inline, when its files cannot be written", async () => {
      fs.writeFileSync(path.join(dataDir, "artifacts"), "a file where the folder should be");
      const job = running({ state: "working" });
      const result = { r: "y".repeat(200) };
      outcomes.done(job, null, { result, metrics: null });
      expect(store.jobs.get(job.id)).to.deep.include({ state: "done", result });
      expect(store.artifacts.forJob(job.id)).to.deep.equal([]);
      await flushLogs();
      expect(logged.map((l) => l.message)).to.include("could not store artifacts");
    });
  });

  describe("failed and canceled", () => {
    it("failed records the error and status, and answers a caller with the target's own body", () => {
      const job = running();
      const body = '{"error":"model \'nosuch\' not found"}';
      outcomes.failed(job, null, {
        error: "model 'nosuch' not found",
        status: 404,
        body,
        contentType: "application/json; charset=utf-8",
        reason: "target refused the request",
      });
      expect(store.jobs.get(job.id)).to.include({
        state: "failed",
        error: "model 'nosuch' not found",
        errorStatus: 404,
      });
      expect(store.transitions.history(job.id).at(-1)).to.include({ reason: "target refused the request" });
      expect(endLines(job.id)).to.deep.equal([
        {
          state: "failed",
          status: 404,
          error: "model 'nosuch' not found",
          body,
          content_type: "application/json; charset=utf-8",
        },
      ]);
    });

    it("canceled ends the state and the relay with the caller's 499", () => {
      const job = running({ state: "working" });
      const relay = startedRelay(job, '{"done":false}');
      expect(outcomes.canceled(job, relay)).to.equal("canceled");
      expect(store.jobs.get(job.id)!.state).to.equal("canceled");
      expect(relayLines(job.id)).to.have.length(3);
      expect(endLines(job.id)).to.deep.equal([{ state: "canceled", status: 499, error: "job canceled" }]);
    });

    it("commits the ending even when the relay's end line cannot be written", async () => {
      fs.writeFileSync(path.join(dataDir, "relays"), "a file where the folder should be");
      const job = running();
      expect(outcomes.failed(job, null, { error: "boom", status: 500 })).to.equal("failed");
      expect(store.jobs.get(job.id)!.state).to.equal("failed");
      await flushLogs();
      expect(logged.map((l) => l.message)).to.include("could not write the relay's end line");
    });
  });

  describe("handedBack (the worker shuts down mid-job)", () => {
    it("requeues an async job with its attempt refunded, even after bytes went out", () => {
      const job = running({ attempts: 2, state: "working" });
      const relay = startedRelay(job, '{"done":false}');
      expect(outcomes.handedBack(job, relay, true)).to.equal("requeued");
      expect(store.jobs.get(job.id)).to.include({ state: "queued", attempts: 1 });
      expect(store.transitions.history(job.id).at(-1)).to.include({ reason: "worker shutting down" });
      expect(endLines(job.id)).to.deep.equal([]);
    });

    it("requeues a sync job whose caller has nothing yet", () => {
      const job = running({ mode: "sync" });
      expect(outcomes.handedBack(job, null, false)).to.equal("requeued");
      expect(store.jobs.get(job.id)).to.include({ state: "queued", attempts: 0 });
      expect(relayText(job.id)).to.equal("");
    });

    it("fails a sync job whose caller has bytes, with a 503 on the relay", () => {
      const job = running({ mode: "sync", state: "working" });
      const relay = startedRelay(job, '{"done":false}');
      expect(outcomes.handedBack(job, relay, true)).to.equal("failed");
      expect(store.jobs.get(job.id)).to.include({
        state: "failed",
        errorStatus: 503,
        error: "worker shut down mid-generation",
      });
      expect(endLines(job.id)).to.deep.equal([
        { state: "failed", status: 503, error: "worker shut down mid-generation" },
      ]);
    });
  });

  describe("a worker that lost the lease", () => {
    /** Another worker took the lease over while this one stalled. */
    const loseLease = () => store.db.prepare("UPDATE worker_lease SET worker_id = 'w2'").run();

    it("cannot record any move: each throws LeaseLostError and leaves the job, its history and relay as they were", () => {
      const moves: Array<[string, (job: JobRecord, relay: RelayWriter) => unknown]> = [
        ["answered", (job, relay) => outcomes.answered(job, relay, { status: 200, contentType: NDJSON })],
        ["working", (job) => outcomes.working(job)],
        ["failed", (job, relay) => outcomes.failed(job, relay, { error: "x", status: 500 })],
        ["canceled", (job, relay) => outcomes.canceled(job, relay)],
        ["requeued", (job, relay) => outcomes.requeued(job, relay, { reason: "x", refundAttempt: true })],
        [
          "interrupted",
          (job, relay) => outcomes.interrupted(job, relay, { error: "x", status: 502, relayStarted: true }),
        ],
        ["handedBack", (job, relay) => outcomes.handedBack(job, relay, false)],
      ];
      const jobs = moves.map(() => running({ attempts: 2, maxAttempts: 2 }));
      // A pending cancel makes requeue try the canceled move: it must be checked too.
      store.transitions.requestCancel(jobs[3]!.id);
      loseLease();
      moves.forEach(([name, move], i) => {
        const job = jobs[i]!;
        const before = store.jobs.get(job.id)!;
        const history = store.transitions.history(job.id);
        const relay = RelayWriter.open(dataDir, job.id);
        expect(() => move(job, relay), name).to.throw(LeaseLostError);
        relay.close();
        expect(store.jobs.get(job.id), name).to.deep.equal(before);
        expect(store.transitions.history(job.id), name).to.deep.equal(history);
        expect(relayText(job.id), name).to.equal("");
      });
    });

    it("done records no artifact for a job it no longer owns", () => {
      const job = running({ state: "working" });
      const relay = startedRelay(job, '{"done":true}');
      loseLease();
      expect(() => outcomes.done(job, relay, { result: { done: true }, metrics: null })).to.throw(LeaseLostError);
      relay.close();
      expect(store.jobs.get(job.id)!.state).to.equal("working");
      expect(endLines(job.id)).to.deep.equal([]);
      // The active worker owns the job now (it may be running it): a stale result must not be indexed or
      // left in the job's folder, where the next ending of the job would find it.
      expect(store.artifacts.forJob(job.id)).to.deep.equal([]);
      expect(fs.existsSync(artifactDir(dataDir, job.id))).to.equal(false);
    });
  });

  describe("cancelByCaller", () => {
    const cancel = (id: string) =>
      cancelByCaller(
        {
          transitions: store.transitions,
          dataDir,
          logger: createLogger({ service: "gateway", stream: new PassThrough() }),
        },
        id,
      );

    it("ends a queued job at once, with exactly one end line for its followers", () => {
      const job = store.transitions.createJob({ kind: "chat", api: "ollama", mode: "sync", model: "m", request: {} });
      expect(cancel(job.id).outcome).to.equal("canceled");
      expect(store.jobs.get(job.id)!.state).to.equal("canceled");
      expect(relayLines(job.id)).to.deep.equal(['#end {"state":"canceled","status":499,"error":"job canceled"}']);
      expect(cancel(job.id).outcome, "a second cancel finds it ended").to.equal("ended");
      expect(relayLines(job.id)).to.have.length(1);
    });

    it("only flags a running job (the worker ends it), and leaves a missing one alone", () => {
      const job = running({ state: "working" });
      expect(cancel(job.id).outcome).to.equal("requested");
      expect(store.jobs.get(job.id)!.state).to.equal("working");
      expect(store.jobs.cancelRequested(job.id)).to.equal(true);
      expect(relayText(job.id)).to.equal("");
      expect(cancel("01NOSUCHJOB0000000000000000").outcome).to.equal("missing");
    });
  });
});
