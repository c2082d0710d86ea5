import { drainOrder, type Store } from "@foreman/shared";

/**
 * Where each queued job stands in the order the worker will drain the queue (drain-by-model, ADR 0007),
 * from the current queue and the worker model the active worker reported in its last heartbeat.
 */
export function queuePositions(store: Store, starvationMs: number, now = Date.now()): Map<string, number> {
  const resident = store.workerLease.holder()?.residentModel ?? null;
  const order = drainOrder(store.jobs.queuedRefs(), resident, now, starvationMs);
  return new Map(order.map((job, i) => [job.id, i + 1]));
}
