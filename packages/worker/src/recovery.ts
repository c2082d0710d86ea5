import { appendRelayEnd, type Logger, type Store } from "@foreman/shared";

/**
 * Jobs left in `loading` or `working` when a worker becomes active were interrupted (the previous worker was
 * killed, or its host went away). An async job goes back to the queue, its attempt spent, until it reaches
 * its limit; a sync job is failed, because its caller's stream cannot be resumed, and its relay gets a
 * final error so a gateway still streaming it tells the caller (SPEC §5.2).
 */
export function recoverInterruptedJobs({
  store,
  logger,
  dataDir,
}: {
  store: Store;
  logger: Logger;
  dataDir: string;
}): number {
  const jobs = store.transitions.activeJobs();
  for (const job of jobs) {
    if (job.mode === "async" && job.attempts < job.maxAttempts) {
      store.transitions.transition(job.id, "queued", { reason: "worker interrupted; requeued" });
      continue;
    }
    const error =
      job.mode === "sync"
        ? "worker interrupted while the job was running"
        : `worker interrupted; attempt limit (${job.maxAttempts}) reached`;
    store.transitions.transition(job.id, "failed", { error, errorStatus: 500, reason: error });
    appendRelayEnd(dataDir, job.id, { state: "failed", status: 500, error });
  }
  if (jobs.length > 0) logger.warn("recovered interrupted jobs", { count: jobs.length });
  return jobs.length;
}
