import type { JobState } from "./job-states.js";
import type { Logger } from "./logger.js";
import type { JobRecord } from "./store/jobs.js";

/** A stream whose writes can be held and let go together (Node's writable streams). */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * The one log line per job state transition, with the job id, model and the timings known at
 * that point: time spent queued, loading and working, and the target's load duration once it is known.
 *
 * Lines are written at the end of the event-loop turn, not inside the transition: a transition sits on the
 * way to the caller's first token (the gateway's commit before it wakes the worker, the claim before the
 * target request, `working` before the relay's first line), and writing to a piped stdout is a system call
 * that wakes the log reader. Deferred, the line goes out once the wake-up, request or relay write has.
 * The fields are taken at the transition, and the lines keep their order.
 */
export function logTransitions(logger: Logger, output: Corkable = process.stdout) {
  const leaveTogether = coalesceWritesOfOneTick(output);
  let pending: Array<[level: "info" | "warn", message: string, fields: Record<string, unknown>]> = [];
  const flush = (atExit = false) => {
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    // At exit no later tick comes to let held writes go.
    if (!atExit) leaveTogether();
    for (const [level, message, fields] of lines) logger.log(level, message, fields);
  };
  // A process that exits before the turn ends (a graceful stop's last hand-back) still writes its lines.
  process.on("exit", () => flush(true));
  return (job: JobRecord, from: JobState | null, reason: string | undefined): void => {
    const fields: Record<string, unknown> = {
      job_id: job.id,
      model: job.model,
      from,
      to: job.state,
      mode: job.mode,
      attempt: job.attempts,
    };
    if (reason) fields.reason = reason;
    if (job.loadingAt && job.queuedAt && job.state === "loading") fields.wait_ms = job.loadingAt - job.queuedAt;
    if (job.workingAt && job.loadingAt && job.state === "working") fields.load_ms = job.workingAt - job.loadingAt;
    if (job.endedAt) {
      fields.total_ms = job.endedAt - job.createdAt;
      if (job.workingAt && job.workingAt >= (job.loadingAt ?? 0)) fields.run_ms = job.endedAt - job.workingAt;
      if (job.metrics?.load_duration !== undefined) fields.target_load_ms = Math.round(job.metrics.load_duration / 1e6);
      if (job.metrics?.eval_count !== undefined) fields.eval_count = job.metrics.eval_count;
      if (job.error) fields.error = job.error;
    }
    if (pending.length === 0) setImmediate(() => flush());
    pending.push([job.state === "failed" ? "warn" : "info", `job ${job.state}`, fields]);
  };
}

/**
 * Holds `output`'s writes until the current tick ends, then lets them leave in one write. A commit of many
 * new jobs logs a line each, and a write per line to a pipe was a tenth of the gateway's CPU under POST /jobs
 * load. Nothing waits longer than the tick that wrote it, and a process that exits within that tick lets
 * the held lines go first.
 */
function coalesceWritesOfOneTick(output: Corkable): () => void {
  let held = false;
  const release = () => {
    if (!held) return;
    held = false;
    output.uncork();
  };
  process.on("exit", release);
  return () => {
    if (held) return;
    held = true;
    output.cork();
    process.nextTick(release);
  };
}
