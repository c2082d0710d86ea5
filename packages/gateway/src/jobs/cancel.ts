import { appendRelayEnd, type CancelOutcome, type Logger, type Store } from "@foreman/shared";

/**
 * Cancels a job on behalf of a caller: a queued job ends here (and its relay gets its end line so anyone
 * following it stops); a running one is flagged for the worker, which stops the target. Either way the
 * worker is woken: to stop the job, or to deliver the job.canceled webhook.
 */
export function cancelJob(
  deps: { store: Store; dataDir: string; wake: () => void; logger: Logger },
  id: string,
): CancelOutcome {
  const outcome = deps.store.transitions.requestCancel(id);
  if (outcome.outcome === "canceled") {
    try {
      appendRelayEnd(deps.dataDir, id, { state: "canceled", status: 499, error: "job canceled" });
    } catch (err) {
      // Followers fall back to the database's word after one poll period.
      deps.logger.warn("could not end the relay of a canceled job", { job_id: id, error: (err as Error).message });
    }
  }
  if (outcome.outcome === "canceled" || outcome.outcome === "requested") deps.wake();
  return outcome;
}
