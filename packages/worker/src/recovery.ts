import { type JobOutcomes, type Logger, relayStarted, type Store } from "@foreman/shared";

/**
 * Jobs left in `loading` or `working` when a worker becomes active were interrupted (the previous worker was
 * killed, or its host went away). Each ends through job-outcome's retry rule: back to the queue while
 * attempts remain and no synchronous caller has bytes yet (that caller just keeps waiting), failed
 * otherwise, with a final error line for a gateway still streaming it.
 */
export function recoverInterruptedJobs({
  store,
  outcomes,
  logger,
  dataDir,
  except = null,
}: {
  store: Pick<Store, "transitions">;
  outcomes: JobOutcomes;
  logger: Logger;
  dataDir: string;
  /** The job this worker is running: not interrupted. */
  except?: string | null;
}): number {
  const jobs = store.transitions.activeJobs().filter((job) => job.id !== except);
  for (const job of jobs) {
    outcomes.interrupted(job, null, {
      error: "worker interrupted while the job was running",
      status: 503,
      relayStarted: relayStarted(dataDir, job.id),
    });
  }
  if (jobs.length > 0) logger.warn("recovered interrupted jobs", { count: jobs.length });
  return jobs.length;
}
