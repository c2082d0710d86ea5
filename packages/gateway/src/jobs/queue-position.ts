import type { JobRecord, Store } from "@foreman/shared";

/**
 * Where queued jobs stand in the order the worker will drain the queue (drain-by-model, ADR 0007), given
 * the worker models (and their runner options) the active worker reported in its last heartbeat, and how many
 * it keeps resident at most. Counted in SQL over indexes, so the
 * cost does not come from reading the queue; pass a whole page at once.
 */
export function queuePositions(
  store: Store,
  starvationMs: number,
  jobs: readonly JobRecord[],
  now = Date.now(),
): Map<string, number> {
  const queued = jobs.filter((j) => j.state === "queued");
  if (queued.length === 0) return new Map();
  const holder = store.workerLease.holder();
  return store.queuePositions.positions(queued, {
    resident: holder?.resident ?? null,
    workerSlots: holder?.workerSlots ?? 1,
    now,
    starvationMs,
  });
}

/** One job's position, or undefined when it is not queued. */
export function queuePosition(store: Store, starvationMs: number, job: JobRecord, now = Date.now()) {
  return queuePositions(store, starvationMs, [job], now).get(job.id);
}
