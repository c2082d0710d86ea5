import { isTerminal, type RelayLine, type Store, ValidationError } from "@foreman/shared";

/**
 * Resuming `GET /jobs/<id>/stream` after a dropped connection: `?after=<n>` skips the first n chunks of
 * the attempt being streamed (the ones the caller already has), and `X-Foreman-Attempt` names that attempt
 * so a caller that reattaches can say which attempt its n chunks came from (`&attempt=<k>`).
 *
 * An attempt here is one answer of the target: the k-th `#start` line of the job's relay, each of which has
 * its move to `working` in the job's history (committed right after the line; by the next worker's recovery
 * when the worker was killed in between). Counting those moves in the job's history
 * (rather than using the job's `attempts` counter, which a worker that hands a job back at shutdown
 * refunds) gives every answer its own number, so a resumed stream never splices one answer's chunks onto
 * another's: chunks of a cut-short answer cannot be continued by the next one, which generates anew.
 */
export interface StreamResume {
  /** Chunks of the attempt the caller already has. */
  after: number;
  /** The attempt those chunks came from, when the caller knows it. */
  attempt: number | undefined;
}

/** Null when the request is a plain replay (neither `after` nor `attempt`). */
export function parseStreamResume(query: Record<string, unknown>): StreamResume | null {
  const after = wholeNumberParam(query.after, "after", "the number of chunks already received");
  const attempt = wholeNumberParam(query.attempt, "attempt", "the X-Foreman-Attempt header of an earlier response");
  if (after === undefined && attempt === undefined) return null;
  return { after: after ?? 0, attempt };
}

function wholeNumberParam(value: unknown, name: string, meaning: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^\d{1,9}$/.test(value)) {
    throw new ValidationError(`${name} must be a whole number (${meaning}), given once`);
  }
  return Number(value);
}

/**
 * The attempt a resumed stream serves: the one answering now, the one to come while the job waits in the
 * queue (every earlier answer was cut short), or the last one once the job has ended (0: none answered).
 * State and history are read in one transaction so a claim between the two reads cannot skew the count.
 */
export function streamedAttempt(store: Store, jobId: string): number {
  const read = store.db.transaction(() => ({
    state: store.jobs.state(jobId),
    answers: store.transitions.history(jobId).filter((row) => row.to_state === "working").length,
  }));
  const { state, answers } = read();
  if (state === null || state === "working" || isTerminal(state)) return answers;
  return answers + 1;
}

/**
 * Picks a resumed stream's lines from a relay read from its first byte: the data lines of `attempt` past
 * the first `after`, and the end line. `stop` means a later attempt began: the response ends there without
 * an end line, and a caller that reattaches learns from the attempt number that it must start over.
 */
export function attemptLinePicker(attempt: number, after: number): (line: RelayLine) => "send" | "skip" | "stop" {
  let starts = 0;
  let skipped = 0;
  return (line) => {
    if (line.kind === "end") return "send";
    if (line.kind === "start") return ++starts > attempt ? "stop" : "skip";
    if (starts !== attempt) return "skip";
    if (skipped < after) {
      skipped++;
      return "skip";
    }
    return "send";
  };
}
