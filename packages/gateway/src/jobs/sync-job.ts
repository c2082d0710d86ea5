import type http from "node:http";
import { ensureRelay, type NewJob } from "@foreman/shared";
import { answerFromRelay } from "../relay-response.js";
import type { JobRouteDeps } from "../route-deps.js";

/**
 * A synchronous caller's request made a job: committed (so it survives any restart), the worker woken by
 * the commit, and the caller answered from the job's relay as the target answers the worker.
 */
export async function answerAsSyncJob(
  deps: JobRouteDeps,
  input: Omit<NewJob, "mode">,
  bytes: number,
  res: http.ServerResponse,
): Promise<void> {
  const { job, position } = await deps.batcher.create(
    { ...input, mode: "sync" },
    bytes,
    // Only the early answer tells a synchronous caller its place in the queue.
    deps.config.syncKeepaliveMs > 0,
  );
  ensureRelay(deps.config.dataDir, job.id);
  // A stale heartbeat means no worker will pick this up soon: say so once per job, the caller waits.
  if (!deps.store.workerLease.isFresh(deps.store.workerLease.holder())) {
    deps.logger.warn("no active worker (heartbeat stale or missing); the job waits in the queue", {
      job_id: job.id,
      model: job.model,
    });
  }
  await answerFromRelay(deps, job, res, position);
}
