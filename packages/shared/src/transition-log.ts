import type { JobState } from "./job-states.js";
import type { Logger } from "./logger.js";
import type { JobRecord } from "./store/jobs.js";

/**
 * The one log line per job state transition, with the job id, model and the timings known at
 * that point: time spent queued, loading and working, and the target's load duration once it is known.
 */
export function logTransitions(logger: Logger) {
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
    const level = job.state === "failed" ? "warn" : "info";
    logger.log(level, `job ${job.state}`, fields);
  };
}
