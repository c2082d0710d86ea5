import { type CancelOutcome, cancelByCaller, type Logger, type Store } from "@foreman/shared";

/**
 * Cancels a job on behalf of a caller (job-outcome's `cancelByCaller`), then wakes the worker: to stop the
 * running job, or to deliver the job.canceled webhook.
 */
export function cancelJob(
  deps: { store: Store; dataDir: string; wake: () => void; logger: Logger },
  id: string,
): CancelOutcome {
  const outcome = cancelByCaller(
    { transitions: deps.store.transitions, dataDir: deps.dataDir, logger: deps.logger },
    id,
  );
  if (outcome.outcome === "canceled" || outcome.outcome === "requested") deps.wake();
  return outcome;
}
