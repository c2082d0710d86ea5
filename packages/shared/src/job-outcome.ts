import fs from "node:fs";
import { relayTranscriptRecord, writeArtifact } from "./artifact-files.js";
import type { Logger } from "./logger.js";
import { appendRelayEnd, type RelayEnd, type RelayWriter, relayPath } from "./relay.js";
import type { ArtifactRecord, ArtifactsStore } from "./store/artifacts.js";
import type { JobRecord } from "./store/jobs.js";
import type { CancelOutcome, TransitionsStore, WorkerTransitions } from "./store/transitions.js";

/**
 * How a job ends, in one place. Each ending records the move through the state machine (one transaction
 * with its history and outbox rows) and then writes the relay's `#end` line, which tells every gateway
 * following the job what to answer its caller. The database is the truth: a relay line that cannot be
 * written (disk full) is logged, and followers end from the database's word after one poll period.
 *
 * Who calls it: the worker's job runner (a job it runs ends), recovery (jobs a previous worker left
 * running), and the gateway's cancel path (a queued job canceled by its caller). Nothing else pairs a
 * transition with a relay end line.
 */

/** The answer a caller gets when its job was canceled (nginx's "client closed request"). */
const CANCELED: RelayEnd = { state: "canceled", status: 499, error: "job canceled" };

/**
 * The retry rule for a job whose run broke off (the worker died, the target went away mid-answer): it runs
 * again while attempts remain, unless it is a synchronous job whose caller already received bytes, since
 * that caller's stream cannot be resumed by another attempt. A synchronous job whose caller has received
 * nothing yet is requeued like an async one: its caller simply keeps waiting.
 */
export function retriesAfterInterruption(
  job: Pick<JobRecord, "mode" | "attempts" | "maxAttempts">,
  relayStarted: boolean,
): boolean {
  if (callerHasBytes(job, relayStarted)) return false;
  return job.attempts < job.maxAttempts;
}

/** A synchronous caller has its headers (and maybe chunks) once the relay has started; async jobs have no such caller. */
function callerHasBytes(job: Pick<JobRecord, "mode">, relayStarted: boolean): boolean {
  return job.mode === "sync" && relayStarted;
}

/**
 * Whether a job's caller may have received bytes: the relay has a `#start` line, which is what makes a
 * gateway send the headers. A sync job's relay holds at most one attempt, so its first line tells.
 */
export function relayStarted(dataDir: string, jobId: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(relayPath(dataDir, jobId), "r");
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(7);
    const n = fs.readSync(fd, head, 0, 7, 0);
    return head.subarray(0, n).toString() === "#start ";
  } finally {
    fs.closeSync(fd);
  }
}

export interface JobOutcomeDeps {
  /** The worker's lease-checked moves. */
  transitions: WorkerTransitions;
  artifacts: ArtifactsStore;
  dataDir: string;
  logger: Logger;
  /** Results larger than this are served as the `result.json` artifact instead of inline. */
  inlineResultMaxBytes: number;
}

export interface Failure {
  error: string;
  /** The HTTP status a caller without headers gets. */
  status: number;
  /** The target's own error body and content type, to answer a caller byte for byte. */
  body?: string;
  contentType?: string;
  /** Recorded in the history when it says more than `error`. */
  reason?: string;
}

export type Ending = "done" | "failed" | "canceled" | "requeued";

/**
 * The worker's moves that pair a transition with a relay line; `relay` is the job's open writer when the run
 * got that far (every ending closes it).
 */
export function createJobOutcomes(deps: JobOutcomeDeps) {
  const { transitions, logger } = deps;

  function endRelay(jobId: string, relay: RelayWriter | null, end: RelayEnd): void {
    try {
      if (relay) relay.end(end);
      else appendRelayEnd(deps.dataDir, jobId, end);
    } catch (err) {
      logger.warn("could not write the relay's end line", { job_id: jobId, error: (err as Error).message });
    }
  }

  function closeRelay(relay: RelayWriter | null): void {
    try {
      relay?.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Writes the result's file and says which artifacts the job has (the result, and the relay-backed
   * transcript) and whether the result is small enough to inline. The records are indexed by the terminal
   * transition itself, so its webhook can point at them and a worker that lost the lease indexes nothing.
   */
  function artifactsFor(job: JobRecord, result: unknown): { records: ArtifactRecord[]; inline: boolean } {
    const resultJson = JSON.stringify(result);
    try {
      const records = [writeArtifact(deps.dataDir, job.id, "result.json", "application/json", resultJson)];
      const transcript = relayTranscriptRecord(deps.dataDir, job.id);
      if (transcript) records.push(transcript);
      return { records, inline: Buffer.byteLength(resultJson) <= deps.inlineResultMaxBytes };
    } catch (err) {
      // The job itself succeeded; losing its files (disk full) must not fail it. The result stays inline.
      logger.error("could not store artifacts", { job_id: job.id, error: (err as Error).message });
      return { records: [], inline: true };
    }
  }

  const outcomes = {
    /**
     * The target answered: the relay's `#start` says with which status and framing (it goes out with the
     * first chunk). The lease is checked first, so a worker that lost the job writes nothing into its relay.
     */
    answered(job: JobRecord, relay: RelayWriter, start: { status: number; contentType: string }) {
      transitions.assertLease(job.id);
      relay.start({ attempt: job.attempts, status: start.status, content_type: start.contentType });
    },

    /**
     * The target's first chunk is on the relay: the job is working. Committed after that write rather than
     * before it, so this transaction is not between the target's first token and the caller's; every end of
     * a run that started answering commits it before its own move, so `working` always precedes the end.
     */
    working(job: JobRecord) {
      transitions.transition(job.id, "working");
    },

    /** The target answered in full. */
    done(
      job: JobRecord,
      relay: RelayWriter | null,
      answer: { result: unknown; metrics: Record<string, number> | null; tail?: string },
    ) {
      // A worker that lost the lease writes no file into a job that is another worker's now.
      transitions.assertLease(job.id);
      const { records, inline } = artifactsFor(job, answer.result);
      transitions.transition(job.id, "done", {
        result: inline ? answer.result : null,
        metrics: answer.metrics,
        artifacts: records,
      });
      endRelay(job.id, relay, { state: "done", ...(answer.tail ? { tail: answer.tail } : {}) });
      return "done" as const;
    },

    /** The job cannot succeed: the target refused it, or something broke that another attempt will not fix. */
    failed(job: JobRecord, relay: RelayWriter | null, failure: Failure) {
      transitions.transition(job.id, "failed", {
        error: failure.error,
        errorStatus: failure.status,
        reason: failure.reason ?? failure.error,
      });
      endRelay(job.id, relay, {
        state: "failed",
        status: failure.status,
        error: failure.error,
        ...(failure.body !== undefined ? { body: failure.body } : {}),
        ...(failure.contentType !== undefined ? { content_type: failure.contentType } : {}),
      });
      return "failed" as const;
    },

    /** A caller's cancel reached the running job and the worker stopped it. */
    canceled(job: JobRecord, relay: RelayWriter | null) {
      transitions.transition(job.id, "canceled", { reason: "canceled while running" });
      endRelay(job.id, relay, CANCELED);
      return "canceled" as const;
    },

    /**
     * Back to the queue (canceled instead when a cancel was requested meanwhile). `refundAttempt` when
     * nothing was tried: the target was unreachable before it answered, or the worker handed the job back.
     */
    requeued(job: JobRecord, relay: RelayWriter | null, how: { reason: string; refundAttempt?: boolean }) {
      const moved = transitions.requeue(job.id, {
        reason: how.reason,
        ...(how.refundAttempt ? { refundAttempt: true } : {}),
      });
      if (moved.state === "canceled") {
        endRelay(job.id, relay, CANCELED);
        return "canceled" as const;
      }
      // No end line: the next attempt appends its own `#start` to the same relay.
      closeRelay(relay);
      return "requeued" as const;
    },

    /** The run broke off (target lost, worker killed): another attempt, or a failure, by the retry rule above. */
    interrupted(
      job: JobRecord,
      relay: RelayWriter | null,
      cause: { error: string; status: number; relayStarted: boolean },
    ) {
      if (retriesAfterInterruption(job, cause.relayStarted)) {
        return outcomes.requeued(job, relay, { reason: cause.error });
      }
      const error = callerHasBytes(job, cause.relayStarted)
        ? cause.error
        : `${cause.error}; attempt limit (${job.maxAttempts}) reached`;
      return outcomes.failed(job, relay, { error, status: cause.status });
    },

    /**
     * The worker is shutting down mid-job: the job goes back to the queue with its attempt refunded (nothing
     * it did counts against it), unless a synchronous caller already has bytes and cannot be resumed.
     */
    handedBack(job: JobRecord, relay: RelayWriter | null, relayStarted: boolean) {
      if (!callerHasBytes(job, relayStarted)) {
        return outcomes.requeued(job, relay, { reason: "worker shutting down", refundAttempt: true });
      }
      return outcomes.failed(job, relay, { error: "worker shut down mid-generation", status: 503 });
    },
  };
  return outcomes;
}

export type JobOutcomes = ReturnType<typeof createJobOutcomes>;

/**
 * A caller cancels a job (the cancel route, or a synchronous caller who went away). A queued job ends
 * here, with its relay's end line so anyone following it stops; a running job is only flagged, and the
 * worker, which owns running jobs, stops the target and records the end through `canceled` above.
 */
export function cancelByCaller(
  deps: { transitions: TransitionsStore; dataDir: string; logger: Logger },
  jobId: string,
): CancelOutcome {
  const outcome = deps.transitions.requestCancel(jobId);
  if (outcome.outcome === "canceled") {
    try {
      appendRelayEnd(deps.dataDir, jobId, CANCELED);
    } catch (err) {
      deps.logger.warn("could not write the relay's end line", { job_id: jobId, error: (err as Error).message });
    }
  }
  return outcome;
}
