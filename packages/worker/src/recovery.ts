import { type JobOutcomes, type Logger, relayStartCount, relayStarted, type Store } from "@foreman/shared";

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
    // Killed between the relay's `#start` and the `working` commit that follows it (ADR 0032): the move is
    // recorded first, so each answer in the relay has one (resumed streams number answers by those moves).
    if (job.state === "loading" && relayStartCount(dataDir, job.id) > workingMoves(store, job.id)) {
      outcomes.working(job);
    }
    outcomes.interrupted(job, null, {
      error: "worker interrupted while the job was running",
      status: 503,
      relayStarted: relayStarted(dataDir, job.id),
    });
  }
  if (jobs.length > 0) logger.warn("recovered interrupted jobs", { count: jobs.length });
  return jobs.length;
}

function workingMoves(store: Pick<Store, "transitions">, jobId: string): number {
  return store.transitions.history(jobId).filter((move) => move.to_state === "working").length;
}
