import { webhookEndpoint, webhookOrigin } from "../webhook-endpoint.js";
import type { Db } from "./database.js";
import { createMetricsStore, type MetricsStore } from "./metrics.js";

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

/**
 * A webhook endpoint that is failing or disabled (a healthy one has no state). The rule that moves it
 * between states is the worker's (webhook-endpoint-health.ts); the store only keeps it.
 */
export interface EndpointHealth {
  /** The first failed attempt of the current run of failures. */
  failingSince: number;
  consecutiveFailures: number;
  /** Null while the endpoint is enabled. */
  disabledAt: number | null;
  /** When a disabled endpoint may be tried again with one delivery. */
  disabledUntil: number | null;
  disabledReason: string | null;
}

/** Narrows which receivers (`webhookOrigin`) a due-delivery read may return. */
export interface OriginFilter {
  /** Leave out rows for these receivers (busy, paused, or served by another lane). */
  except?: readonly string[];
  /** Return only rows for these receivers. */
  only?: readonly string[];
}

export interface FailedAttempt {
  /** HTTP status of the answer, or null when there was none (timeout, connection error). */
  status: number | null;
  error: string;
}

/**
 * The durable webhook outbox: events are delivered at least once, in order per job. Rows are written by the transitions store in the transaction
 * of each state change; this module is the delivery side's view of them.
 *
 * Order per job: only the oldest pending row of a job is ever due. A later event waits until the earlier
 * one is delivered or given up, even when its own `next_attempt_at` (its creation time) is already past,
 * so a receiver never sees `job.done` before a `job.working` that is still being retried.
 */
export function createOutboxStore(db: Db, options: { now?: () => number; metrics?: MetricsStore } = {}) {
  const clock = options.now ?? Date.now;
  // The URL groupings, in SQL, from the one JavaScript definition (so they cannot drift apart). Only the
  // delivery side's statements use them; registering them costs the gateway nothing.
  db.function("webhook_origin", { deterministic: true }, (url: unknown) => webhookOrigin(String(url)));
  db.function("webhook_endpoint", { deterministic: true }, (url: unknown) => webhookEndpoint(String(url)));
  // "No earlier pending row of the same job" keeps the order; the outer scan uses the partial index on
  // pending rows' next_attempt_at, the inner one the (job_id, id) index, so both stay small as the
  // delivered history grows. The receiver filters come first: rows of a busy receiver are skipped before
  // the order check, and the scan goes on past them to other receivers' rows, which is what keeps one
  // receiver's backlog from hiding everyone else's deliveries.
  const selectDue = db.prepare<{ now: number; limit: number; except: string | null; only: string | null }, DueDelivery>(
    `SELECT o.id, o.event_id, o.job_id, o.event_type AS type, o.payload, o.url, o.attempts,
            o.next_attempt_at, o.created_at, j.webhook_secret
       FROM webhook_outbox o
       JOIN jobs j ON j.id = o.job_id
      WHERE o.status = 'pending' AND o.next_attempt_at <= @now
        AND (@except IS NULL OR webhook_origin(o.url) NOT IN (SELECT value FROM json_each(@except)))
        AND (@only IS NULL OR webhook_origin(o.url) IN (SELECT value FROM json_each(@only)))
        AND NOT EXISTS (SELECT 1 FROM webhook_outbox e
                         WHERE e.job_id = o.job_id AND e.id < o.id AND e.status = 'pending')
      ORDER BY o.next_attempt_at, o.id
      LIMIT @limit`,
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
  // Settles a row without an attempt (its endpoint is disabled): attempts stay as they were.
  const updateFailedUnattempted = db.prepare(
    `UPDATE webhook_outbox SET status = 'failed', last_status = NULL, last_error = ?, next_attempt_at = ?
      WHERE id = ? AND status = 'pending'`,
  );
  // Rows in flight are left to their own outcome, which is recorded when their attempt ends.
  const updateFailedForEndpoint = db.prepare<{ endpoint: string; error: string; at: number; except: string }>(
    `UPDATE webhook_outbox SET status = 'failed', last_status = NULL, last_error = @error, next_attempt_at = @at
      WHERE status = 'pending' AND webhook_endpoint(url) = @endpoint
        AND id NOT IN (SELECT value FROM json_each(@except))`,
  );
  const selectEndpoint = db.prepare<[string], EndpointHealth>(
    `SELECT failing_since AS failingSince, consecutive_failures AS consecutiveFailures, disabled_at AS disabledAt,
            disabled_until AS disabledUntil, disabled_reason AS disabledReason
       FROM webhook_endpoints WHERE endpoint = ?`,
  );
  const upsertEndpoint = db.prepare<EndpointHealth & { endpoint: string; at: number }>(
    `INSERT INTO webhook_endpoints
            (endpoint, failing_since, consecutive_failures, disabled_at, disabled_until, disabled_reason, updated_at)
     VALUES (@endpoint, @failingSince, @consecutiveFailures, @disabledAt, @disabledUntil, @disabledReason, @at)
     ON CONFLICT (endpoint) DO UPDATE SET
            failing_since = excluded.failing_since, consecutive_failures = excluded.consecutive_failures,
            disabled_at = excluded.disabled_at, disabled_until = excluded.disabled_until,
            disabled_reason = excluded.disabled_reason, updated_at = excluded.updated_at`,
  );
  const deleteEndpoint = db.prepare("DELETE FROM webhook_endpoints WHERE endpoint = ?");
  const deleteQuietEndpoints = db.prepare("DELETE FROM webhook_endpoints WHERE updated_at < ?");
  const metrics = options.metrics ?? createMetricsStore(db);
  const disable = db.transaction(
    (endpoint: string, health: EndpointHealth, error: string, at: number, inFlight: readonly number[]) => {
      upsertEndpoint.run({ endpoint, ...health, at });
      const settled = updateFailedForEndpoint.run({ endpoint, error, at, except: JSON.stringify(inFlight) }).changes;
      if (settled > 0) metrics.increment("foreman_webhook_deliveries_total", { outcome: "endpoint_disabled" }, settled);
      return settled;
    },
  );
  const selectForJob = db.prepare<[string], DeliveryView>(
    `SELECT event_id, event_type AS type, status, attempts, last_status, last_error,
            CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, delivered_at, created_at
       FROM webhook_outbox
      WHERE job_id = ?
      ORDER BY id`,
  );

  // Each outcome is counted in the transaction that records it (foreman_webhook_deliveries_total).
  const settle = db.transaction((outcome: string, write: () => boolean): boolean => {
    const changed = write();
    if (changed) metrics.increment("foreman_webhook_deliveries_total", { outcome });
    return changed;
  });
  const pendingCount = db.prepare<[], { count: number }>(
    "SELECT COUNT(*) AS count FROM webhook_outbox INDEXED BY webhook_outbox_due WHERE status = 'pending'",
  );
  return {
    /** Deliveries still to make (the webhook backlog), over the pending-only index. */
    backlog(): number {
      return pendingCount.get()?.count ?? 0;
    },
    /**
     * Up to `limit` deliveries due at `now`, at most one per job (its oldest pending event), soonest first,
     * optionally only for some receivers or leaving some out.
     */
    dueDeliveries(limit: number, now: number = clock(), origins: OriginFilter = {}): DueDelivery[] {
      return selectDue.all({
        now,
        limit,
        except: origins.except?.length ? JSON.stringify(origins.except) : null,
        only: origins.only ? JSON.stringify(origins.only) : null,
      });
    },
    /** Records a 2xx answer. Returns false when the row was no longer pending. */
    markDelivered(id: number, httpStatus: number, at: number = clock()): boolean {
      return settle("delivered", () => updateDelivered.run(httpStatus, at, id).changes === 1);
    },
    /** Records a failed attempt and when to try again. Returns false when the row was no longer pending. */
    scheduleRetry(id: number, attempt: FailedAttempt & { nextAttemptAt: number }): boolean {
      return settle(
        "failed_will_retry",
        () => updateRetry.run(attempt.status, attempt.error, attempt.nextAttemptAt, id).changes === 1,
      );
    },
    /** Records a last failed attempt and stops retrying (status 'failed'); the job's next event becomes due. */
    markGivenUp(id: number, attempt: FailedAttempt & { at?: number }): boolean {
      return settle(
        "given_up",
        () => updateGivenUp.run(attempt.status, attempt.error, attempt.at ?? clock(), id).changes === 1,
      );
    },
    /** Settles a delivery as failed without an attempt (attempts unchanged), e.g. its endpoint is disabled. */
    failUnattempted(id: number, error: string, at: number = clock()): boolean {
      return settle("not_attempted", () => updateFailedUnattempted.run(error, at, id).changes === 1);
    },
    /** The endpoint's failing or disabled state; null when it is healthy. */
    endpointHealth(endpoint: string): EndpointHealth | null {
      return selectEndpoint.get(endpoint) ?? null;
    },
    /** Keeps an endpoint's new state; null (healthy) removes it. */
    saveEndpointHealth(endpoint: string, health: EndpointHealth | null, at: number = clock()): void {
      if (health === null) deleteEndpoint.run(endpoint);
      else upsertEndpoint.run({ endpoint, ...health, at });
    },
    /**
     * Keeps a disabled endpoint's state and, in the same transaction, settles every pending delivery to it
     * as failed with `error` (but those in `inFlight`, whose attempts will record their own outcome).
     * Returns how many deliveries it settled.
     */
    disableEndpoint(
      endpoint: string,
      health: EndpointHealth,
      error: string,
      options: { at?: number; inFlight?: readonly number[] } = {},
    ): number {
      return disable(endpoint, health, error, options.at ?? clock(), options.inFlight ?? []);
    },
    /**
     * Forgets endpoints not heard of since `before`: a run of failures with a quiet gap that long is not one
     * outage, and a disabled endpoint that old is due its trial anyway. Returns how many were forgotten.
     */
    forgetQuietEndpoints(before: number): number {
      return deleteQuietEndpoints.run(before).changes;
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
