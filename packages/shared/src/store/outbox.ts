import type { Db } from "./database.js";

/** One outbox row the dispatcher may send now: the head of its job's pending events. */
export interface DueDelivery {
  id: number;
  event_id: string;
  job_id: string;
  type: string;
  /** The exact body to POST (and to sign): frozen when the transition was committed. */
  payload: string;
  url: string;
  /** Attempts already made, before this one. */
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  /** The job's own signing secret; null means "use the operator default, if any". */
  webhook_secret: string | null;
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

/** A job's delivery as the job API shows it (epoch ms timestamps). */
export interface DeliveryView {
  event_id: string;
  type: string;
  status: DeliveryStatus;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  /** When the next attempt is due; null once the delivery is delivered or given up. */
  next_attempt_at: number | null;
  delivered_at: number | null;
  created_at: number;
}

export interface FailedAttempt {
  /** HTTP status of the answer, or null when there was none (timeout, connection error). */
  status: number | null;
  error: string;
}

/**
 * The durable webhook outbox (SPEC §5.3). Rows are written by the transitions store in the transaction
 * of each state change; this module is the delivery side's view of them.
 *
 * Order per job: only the oldest pending row of a job is ever due. A later event waits until the earlier
 * one is delivered or given up, even when its own `next_attempt_at` (its creation time) is already past,
 * so a receiver never sees `job.done` before a `job.working` that is still being retried.
 */
export function createOutboxStore(db: Db, options: { now?: () => number } = {}) {
  const clock = options.now ?? Date.now;
  // "No earlier pending row of the same job" keeps the order; the outer scan uses the partial index on
  // pending rows' next_attempt_at, the inner one the (job_id, id) index, so both stay small as the
  // delivered history grows.
  const selectDue = db.prepare<[number, number], DueDelivery>(
    `SELECT o.id, o.event_id, o.job_id, o.event_type AS type, o.payload, o.url, o.attempts,
            o.next_attempt_at, o.created_at, j.webhook_secret
       FROM webhook_outbox o
       JOIN jobs j ON j.id = o.job_id
      WHERE o.status = 'pending' AND o.next_attempt_at <= ?
        AND NOT EXISTS (SELECT 1 FROM webhook_outbox e
                         WHERE e.job_id = o.job_id AND e.id < o.id AND e.status = 'pending')
      ORDER BY o.next_attempt_at, o.id
      LIMIT ?`,
  );
  // Only heads count: a non-head row's next_attempt_at is in the past while its head backs off, and
  // waking up for it would find nothing to do, over and over.
  const selectNextDue = db.prepare<[number], { at: number | null }>(
    `SELECT MIN(o.next_attempt_at) AS at
       FROM webhook_outbox o
      WHERE o.status = 'pending' AND o.next_attempt_at > ?
        AND NOT EXISTS (SELECT 1 FROM webhook_outbox e
                         WHERE e.job_id = o.job_id AND e.id < o.id AND e.status = 'pending')`,
  );
  // Every outcome update is guarded by status = 'pending' so a row that was already settled (by a
  // duplicate dispatcher, say) is never moved back or counted twice.
  const updateDelivered = db.prepare(
    `UPDATE webhook_outbox
        SET status = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL, delivered_at = ?
      WHERE id = ? AND status = 'pending'`,
  );
  const updateRetry = db.prepare(
    `UPDATE webhook_outbox
        SET attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?
      WHERE id = ? AND status = 'pending'`,
  );
  // A given-up row keeps the time it was given up in next_attempt_at (there is no other column for it);
  // deliveriesForJob hides it, since such a row has no next attempt.
  const updateGivenUp = db.prepare(
    `UPDATE webhook_outbox
        SET status = 'failed', attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?
      WHERE id = ? AND status = 'pending'`,
  );
  const selectForJob = db.prepare<[string], DeliveryView>(
    `SELECT event_id, event_type AS type, status, attempts, last_status, last_error,
            CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, delivered_at, created_at
       FROM webhook_outbox
      WHERE job_id = ?
      ORDER BY id`,
  );

  const pendingCount = db.prepare<[], { count: number }>(
    "SELECT COUNT(*) AS count FROM webhook_outbox INDEXED BY webhook_outbox_due WHERE status = 'pending'",
  );
  return {
    /** Deliveries still to make (the webhook backlog), over the pending-only index. */
    backlog(): number {
      return pendingCount.get()?.count ?? 0;
    },
    /** Up to `limit` deliveries due at `now`, at most one per job (its oldest pending event), soonest first. */
    dueDeliveries(limit: number, now: number = clock()): DueDelivery[] {
      return selectDue.all(now, limit);
    },
    /** Records a 2xx answer. Returns false when the row was no longer pending. */
    markDelivered(id: number, httpStatus: number, at: number = clock()): boolean {
      return updateDelivered.run(httpStatus, at, id).changes === 1;
    },
    /** Records a failed attempt and when to try again. Returns false when the row was no longer pending. */
    scheduleRetry(id: number, attempt: FailedAttempt & { nextAttemptAt: number }): boolean {
      return updateRetry.run(attempt.status, attempt.error, attempt.nextAttemptAt, id).changes === 1;
    },
    /** Records a last failed attempt and stops retrying (status 'failed'); the job's next event becomes due. */
    markGivenUp(id: number, attempt: FailedAttempt & { at?: number }): boolean {
      return updateGivenUp.run(attempt.status, attempt.error, attempt.at ?? clock(), id).changes === 1;
    },
    /**
     * The earliest time a job's head event is due, or null when nothing is pending. With `after`, only
     * times later than it count: a dispatcher that has just started everything due at `after` uses this to
     * know how long it may sleep, without its own in-flight rows (due, but busy) keeping it awake.
     */
    nextDueAt(after: number = Number.MIN_SAFE_INTEGER): number | null {
      return selectNextDue.get(after)?.at ?? null;
    },
    /** Every delivery of a job, in event order, for the job API. */
    deliveriesForJob(jobId: string): DeliveryView[] {
      return selectForJob.all(jobId);
    },
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;
