import type { Db } from "./database.js";

export interface QueueTotals {
  /** Jobs in state `queued`. */
  jobs: number;
  /** Bytes of those jobs' stored requests. */
  bytes: number;
}

/**
 * The queue's size in jobs and bytes, one row kept exact by the schema's triggers (migration 4), so the
 * admission check on every new job and the readiness body cost one lookup with any number of jobs queued.
 */
export function createQueueTotalsStore(db: Db) {
  const select = db.prepare<[], QueueTotals>("SELECT jobs, bytes FROM queue_totals WHERE id = 1");
  return {
    get(): QueueTotals {
      return select.get() ?? { jobs: 0, bytes: 0 };
    },
  };
}

export type QueueTotalsStore = ReturnType<typeof createQueueTotalsStore>;
