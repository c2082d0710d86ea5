import type http from "node:http";
import {
  type Ending,
  type JobOutcomes,
  type JobRecord,
  type JobsStore,
  LeaseLostError,
  type Logger,
  loadKeyOf,
  RelayWriter,
  relayFraming,
  targetPathFor,
} from "@foreman/shared";
import type { ModelResidency } from "./model-residency.js";
import { ResultCollector } from "./result-collector.js";
import { isOllamaAnswer, pumpToRelay, readErrorBody, targetErrorText } from "./stream-pump.js";
import type { TargetClient } from "./target-client.js";

/**
 * How a run ended; "unreachable" means the target was not reached and the job is queued again; "unclaimed"
 * that the job was no longer this worker's to run when it came to claim it (canceled while queued, the
 * lease moved, or a shutdown's grace period ended), so nothing was recorded.
 */
export type RunOutcome = Ending | "unreachable" | "unclaimed";

type StopReason = "cancel" | "shutdown";

/** The claim's own transaction failed (the run never started). */
class ClaimFailedError extends Error {
  constructor(override readonly cause: unknown) {
    super(`could not claim the job: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export interface JobRunnerDeps {
  client: Pick<TargetClient, "openStream">;
  /** Claims a picked job (queued → loading); null when it is no longer queued or the lease moved. */
  claim: (jobId: string) => JobRecord | null;
  jobs: Pick<JobsStore, "state" | "cancelRequested">;
  outcomes: JobOutcomes;
  residency: ModelResidency;
  logger: Logger;
  dataDir: string;
  /** The longest line (or whole answer) accepted from the target, in characters. */
  lineLimit?: number;
}

interface Run {
  job: JobRecord;
  controller: AbortController;
  reason: StopReason | null;
  done: Promise<RunOutcome>;
  /** Releases the target's response and the relay if the run ends in an unexpected error. */
  release?: () => void;
  /** The relay's `#start` for this run is written (or held to go out with the first chunk). */
  answered?: boolean;
}

/**
 * Runs one claimed job against the target: gets the model ready, sends the request, and tells apart "the
 * target was never reached" (requeued, attempt refunded), "the target refused" (failed with its status and
 * body) and "the answer broke off" (interrupted: the retry rule decides). How each ends is job-outcome's;
 * which model is resident is model-residency's; how chunks reach the relay is stream-pump's.
 */
export function createJobRunner(deps: JobRunnerDeps) {
  const { outcomes, residency, logger } = deps;
  let current: Run | null = null;

  /**
   * After a claim the database refused, the next run claims before it touches the target, until a claim
   * succeeds: a database that keeps refusing must not have the worker swap models and send requests for
   * jobs it cannot record, once per wake-up.
   */
  let claimFirst = false;

  function claimNow(run: Run): JobRecord | null {
    try {
      const claimed = run.controller.signal.aborted ? null : deps.claim(run.job.id);
      claimFirst = false;
      return claimed;
    } catch (err) {
      claimFirst = true;
      run.controller.abort();
      throw new ClaimFailedError(err);
    }
  }

  /**
   * Claims the picked job once its request is on its way to the target: the claim's transaction runs while
   * the target works, instead of between the caller's request and the target's (ADR 0032). A job that is no
   * longer queued by then (canceled while queued) is not run: its request is aborted; one canceled while the
   * model was being made ready is not sent at all. Getting the model ready comes first; if that throws, the
   * job is claimed all the same, so the failure is recorded on it.
   */
  async function claimAfterSending(run: Run): Promise<{ opened: Promise<http.IncomingMessage> } | "unclaimed"> {
    const picked = run.job;
    let claimed: JobRecord | null | undefined;
    if (claimFirst) {
      claimed = claimNow(run);
      if (!claimed) return "unclaimed";
      run.job = claimed;
    }
    let opened: Promise<http.IncomingMessage> | null = null;
    let notReady: { error: unknown } | null = null;
    try {
      await residency.prepareFor(loadKeyOf(picked.model, picked.api, picked.request));
      // Getting ready can take a while (unloading another model): a job canceled meanwhile is not sent.
      if (claimed === undefined && deps.jobs.state(picked.id) !== "queued") run.controller.abort();
      if (!run.controller.signal.aborted) {
        opened = deps.client.openStream(targetPathFor(picked), JSON.stringify(picked.request), run.controller.signal);
        // Awaited by the caller once the claim is made: a refusal must not count as unhandled meanwhile.
        opened.catch(() => undefined);
        // One turn of the event loop: the request is handed to its socket on the next tick.
        if (claimed === undefined) await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      notReady = { error };
    }
    if (claimed === undefined) claimed = claimNow(run);
    if (!claimed) {
      run.controller.abort();
      await opened?.catch(() => undefined);
      return "unclaimed";
    }
    run.job = claimed;
    if (notReady) throw notReady.error;
    // Claimed first, then stopped (a cancel or a shutdown) before anything was sent.
    if (!opened) return { opened: Promise.reject(new Error("stopped before the request was sent")) };
    return { opened };
  }

  async function execute(run: Run): Promise<RunOutcome> {
    const { controller } = run;
    const sent = await claimAfterSending(run);
    if (sent === "unclaimed") return "unclaimed";
    const job = run.job;
    const load = loadKeyOf(job.model, job.api, job.request);
    let res: http.IncomingMessage;
    try {
      res = await sent.opened;
    } catch (err) {
      if (controller.signal.aborted) return stopped(run, null, false);
      const reason = `target unreachable: ${(err as Error).message}`;
      const ending = outcomes.requeued(job, null, { reason, refundAttempt: true });
      return ending === "canceled" ? "canceled" : "unreachable";
    }

    const status = res.statusCode ?? 502;
    const contentType = String(res.headers["content-type"] ?? "application/json; charset=utf-8");
    if (status !== 200) {
      const body = await readErrorBody(res).catch(() => "");
      const error = targetErrorText(body, status);
      return outcomes.failed(job, null, { error, status, body, contentType, reason: "target refused the request" });
    }
    if (!isOllamaAnswer(contentType)) {
      // A 200 that is not Ollama's (a captive portal, a proxy's HTML page) must not reach the caller as success.
      res.destroy();
      const error = `the target answered 200 with content type ${contentType.slice(0, 100)}, not an Ollama answer`;
      return outcomes.failed(job, null, { error, status: 502 });
    }

    residency.answered(load);
    // Released first: if the relay cannot even be opened, the target's answer must not go on unread.
    run.release = () => res.destroy();
    const relay = RelayWriter.open(deps.dataDir, job.id);
    run.release = () => {
      res.destroy();
      relay.close();
    };
    outcomes.answered(job, relay, { status, contentType });
    run.answered = true;
    // `working` is committed once the first chunk is on the relay (see JobOutcomes.working), and at the
    // latest before the run's end is recorded.
    let working = false;
    const markWorking = () => {
      if (working) return;
      outcomes.working(job);
      working = true;
    };
    const relayThenWorking = {
      data(line: string) {
        relay.data(line);
        markWorking();
      },
    };
    const collector = new ResultCollector(job.kind, job.api);
    let tail: string;
    try {
      tail = await pumpToRelay(res, relayFraming(contentType), relayThenWorking, collector, deps.lineLimit);
    } catch (err) {
      if (err instanceof LeaseLostError) throw err;
      // The target did answer: `working` precedes the end (a commit that fails again is unexpected).
      markWorking();
      if (controller.signal.aborted) return stopped(run, relay, true);
      return brokeOff(job, relay, `target connection lost mid-generation: ${(err as Error).message}`);
    }
    markWorking();
    if (!collector.done) return brokeOff(job, relay, "target ended the stream before its final chunk");
    return outcomes.done(job, relay, { result: collector.result(), metrics: collector.metrics(), tail });
  }

  function brokeOff(job: JobRecord, relay: RelayWriter, error: string): RunOutcome {
    residency.forget();
    return outcomes.interrupted(job, relay, { error, status: 502, relayStarted: true });
  }

  /** The job was stopped by us: a caller's cancel, or a shutdown that hands it back. */
  function stopped(run: Run, relay: RelayWriter | null, relayStarted: boolean): RunOutcome {
    if ((run.reason ?? "cancel") === "cancel") return outcomes.canceled(run.job, relay);
    return outcomes.handedBack(run.job, relay, relayStarted);
  }

  /**
   * An error no path above expected (the database refused a write, the disk is full): release the target's
   * response and the relay, and end the job so no caller waits on it forever; then let the loop go on.
   */
  function failUnexpectedly(run: Run, err: unknown): RunOutcome {
    // The database refused the claim: the job is still queued and nothing was recorded; the claim loop
    // stops and says why, as it does when picking fails, rather than pick the same job again at once.
    if (err instanceof ClaimFailedError) throw err.cause;
    const { job } = run;
    try {
      run.release?.();
    } catch {
      // Already released.
    }
    residency.forget();
    if (err instanceof LeaseLostError) {
      // Another worker owns the job now: stop touching it, and let it be.
      logger.warn("lost the worker lease mid-job; leaving the job to the active worker", { job_id: job.id });
      return "requeued";
    }
    const message = (err as Error)?.message ?? String(err);
    logger.error("job run failed unexpectedly", { job_id: job.id, error: (err as Error)?.stack ?? message });
    try {
      const state = deps.jobs.state(job.id);
      if (state === "loading" || state === "working") {
        // Each `#start` in a relay has its `working` move: resumed streams number answers by those moves.
        if (state === "loading" && run.answered) outcomes.working(job);
        return outcomes.failed(job, null, { error: `worker error: ${message}`, status: 500 });
      }
    } catch (inner) {
      // Still non-terminal: the next worker start recovers it.
      logger.error("could not fail the job after an unexpected error", { job_id: job.id, error: String(inner) });
    }
    return "failed";
  }

  return {
    currentJobId: () => current?.job.id ?? null,
    /** Runs one claimed job; settles every job it is given, unexpected errors included. */
    run(job: JobRecord): Promise<RunOutcome> {
      const run: Run = { job, controller: new AbortController(), reason: null, done: Promise.resolve("done") };
      current = run;
      run.done = execute(run)
        .catch((err: unknown) => failUnexpectedly(run, err))
        .finally(() => {
          if (current === run) current = null;
        });
      return run.done;
    },
    /** Aborts the current job if a caller asked to cancel it; cheap enough to call on every wake-up. */
    checkCancel(): void {
      if (!current || current.reason) return;
      // Picked but not claimed yet: a cancel ends a queued job at once, with no flag to read.
      const canceled =
        current.job.state === "queued"
          ? deps.jobs.state(current.job.id) !== "queued"
          : deps.jobs.cancelRequested(current.job.id);
      if (canceled) {
        current.reason = "cancel";
        current.controller.abort();
      }
    },
    /** Stops the current job for shutdown and resolves when it has been handed back. */
    async abortForShutdown(): Promise<void> {
      if (!current) return;
      current.reason ??= "shutdown";
      current.controller.abort();
      await current.done.catch(() => undefined);
    },
    /** Resolves when the current job (if any) has finished. */
    async idle(): Promise<void> {
      await current?.done.catch(() => undefined);
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;
