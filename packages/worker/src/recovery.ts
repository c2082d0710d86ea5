import { appendRelayEnd, type Logger, type RelayEnd, type Store } from "@foreman/shared";

/** Best effort: a relay that cannot be written (disk full) is ended by its readers from the database. */
function endRelay(dataDir: string, jobId: string, end: RelayEnd, logger: Logger): void {
  try {
    appendRelayEnd(dataDir, jobId, end);
  } catch (err) {
    logger.warn("could not end a recovered job's relay", { job_id: jobId, error: (err as Error).message });
  }
}

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
      const moved = store.transitions.requeue(job.id, { reason: "worker interrupted; requeued" });
      if (moved.state === "canceled")
        endRelay(dataDir, job.id, { state: "canceled", status: 499, error: "job canceled" }, logger);
      continue;
    }
    const error =
      job.mode === "sync"
        ? "worker interrupted while the job was running"
        : `worker interrupted; attempt limit (${job.maxAttempts}) reached`;
    store.transitions.transition(job.id, "failed", { error, errorStatus: 500, reason: error });
    endRelay(dataDir, job.id, { state: "failed", status: 500, error }, logger);
  }
  if (jobs.length > 0) logger.warn("recovered interrupted jobs", { count: jobs.length });
  return jobs.length;
}
