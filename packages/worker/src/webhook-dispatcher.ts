import type { DueDelivery, Logger, OutboxStore } from "@foreman/shared";
import { Webhook } from "standardwebhooks";

/** The outbox operations delivery needs; tests wrap them to inject database failures. */
export type WebhookOutbox = Pick<
  OutboxStore,
  "dueDeliveries" | "markDelivered" | "scheduleRetry" | "markGivenUp" | "nextDueAt"
>;
export type DueWebhookDelivery = DueDelivery;

export interface WebhookDispatcherOptions {
  store: { outbox: WebhookOutbox };
  logger: Logger;
  /** FOREMAN_WEBHOOK_SECRET: signs the events of jobs that have no secret of their own. */
  defaultSecret?: string | undefined;
  /** Per attempt, for the whole exchange (connect, send, status line). */
  timeoutMs?: number;
  retryBaseMs?: number;
  retryMaxDelayMs?: number;
  /** How long after the event was recorded a failing delivery is still retried. */
  retryForMs?: number;
  /** Jobs delivered in parallel (each job's own events always go one at a time). */
  concurrency?: number;
  /** Longest sleep between outbox reads, so rows written by another process are seen without a kick. */
  pollIntervalMs?: number;
  /** How long stop() lets in-flight deliveries finish before aborting them. */
  stopGraceMs?: number;
  now?: () => number;
  random?: () => number;
  fetchImpl?: typeof fetch;
}

export const WEBHOOK_USER_AGENT = "foreman-webhooks/1";

const DEFAULTS = {
  timeoutMs: 10_000,
  retryBaseMs: 1_000,
  retryMaxDelayMs: 5 * 60_000,
  retryForMs: 24 * 60 * 60_000,
  concurrency: 8,
  pollIntervalMs: 5_000,
  stopGraceMs: 5_000,
};

/**
 * Exponential backoff with jitter: `min(base * 2^attempts, max)` scaled by a random factor in [0.5, 1), so
 * receivers that failed together (an outage) are not hit again in lockstep, yet the delay never collapses
 * to zero. `attempts` counts the attempts made before the one that just failed.
 */
export function webhookRetryDelay(
  attempts: number,
  policy: { retryBaseMs: number; retryMaxDelayMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.retryBaseMs * 2 ** Math.min(attempts, 52), policy.retryMaxDelayMs);
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

type AttemptOutcome =
  | { ok: true; status: number }
  | { ok: false; status: number | null; error: string; permanent?: boolean }
  | { ok: false; stopped: true };

/**
 * Delivers the webhook outbox (SPEC §5.3): at least once, in order per job, signed with Standard Webhooks,
 * retried with backoff until `retryForMs` has passed since the event. State lives only in the outbox rows,
 * so a restarted worker simply carries on. Deliveries run on their own loop, beside job processing: a slow
 * or dead receiver costs a socket, never a generation slot.
 */
export function createWebhookDispatcher(deps: WebhookDispatcherOptions) {
  const { logger } = deps;
  const outbox = deps.store.outbox;
  const cfg = {
    timeoutMs: deps.timeoutMs ?? DEFAULTS.timeoutMs,
    retryBaseMs: deps.retryBaseMs ?? DEFAULTS.retryBaseMs,
    retryMaxDelayMs: deps.retryMaxDelayMs ?? DEFAULTS.retryMaxDelayMs,
    retryForMs: deps.retryForMs ?? DEFAULTS.retryForMs,
    concurrency: Math.max(1, deps.concurrency ?? DEFAULTS.concurrency),
    pollIntervalMs: deps.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    stopGraceMs: deps.stopGraceMs ?? DEFAULTS.stopGraceMs,
  };
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const fetchImpl = deps.fetchImpl ?? fetch;

  /** One delivery per job at a time: the key is the job id, which is what keeps each job's events in order. */
  const inFlight = new Map<string, Promise<void>>();
  // Aborted only when stop() runs out of patience; the row then stays pending for the next start.
  let stopping = new AbortController();
  let running = false;
  let loopDone: Promise<void> | null = null;
  let wakeLoop: (() => void) | null = null;
  let kicked = false;

  function wake(): void {
    kicked = true;
    wakeLoop?.();
  }

  function sleep(ms: number): Promise<void> {
    if (kicked) {
      kicked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      // The dispatcher alone never keeps the process alive; the worker's main loop does.
      timer.unref();
      function done() {
        clearTimeout(timer);
        wakeLoop = null;
        kicked = false;
        resolve();
      }
      wakeLoop = done;
    });
  }

  /**
   * Starts the due deliveries that fit in the free slots; synchronous up to the first await of each.
   * Throws when the outbox cannot be read.
   */
  function startDue(at: number = now()): Promise<void>[] {
    const free = cfg.concurrency - inFlight.size;
    if (free <= 0) return [];
    // Heads of jobs already in flight come back too (they are still pending); ask for enough to skip them.
    const rows = outbox.dueDeliveries(free + inFlight.size, at);
    const started: Promise<void>[] = [];
    for (const row of rows) {
      if (started.length >= free) break;
      if (inFlight.has(row.job_id)) continue;
      const delivery = deliver(row)
        .catch((err: unknown) => {
          // deliver() records its own failures; this only keeps a bug from becoming an unhandled rejection.
          logger.error("webhook delivery crashed", { job_id: row.job_id, error: errorText(err) });
        })
        .finally(() => {
          inFlight.delete(row.job_id);
          // The job's next event (or a queued job's) may be due right now.
          wake();
        });
      inFlight.set(row.job_id, delivery);
      started.push(delivery);
    }
    return started;
  }

  async function deliver(row: DueWebhookDelivery): Promise<void> {
    const attempt = row.attempts + 1;
    const startedAt = now();
    const outcome = await attemptDelivery(row, startedAt);
    if ("stopped" in outcome) return;
    const at = now();
    const fields = {
      job_id: row.job_id,
      event: row.type,
      event_id: row.event_id,
      attempt,
      http_status: outcome.status,
      duration_ms: at - startedAt,
    };
    try {
      if (outcome.ok) {
        outbox.markDelivered(row.id, outcome.status, at);
        logger.debug("webhook delivered", fields);
        return;
      }
      const failure = { status: outcome.status, error: outcome.error };
      if (outcome.permanent || at - row.created_at > cfg.retryForMs) {
        outbox.markGivenUp(row.id, { ...failure, at });
        logger.warn("webhook delivery given up", {
          ...fields,
          error: outcome.error,
          retried_for_ms: at - row.created_at,
        });
        return;
      }
      const delay = webhookRetryDelay(row.attempts, cfg, random);
      outbox.scheduleRetry(row.id, { ...failure, nextAttemptAt: at + delay });
      logger.warn("webhook delivery failed", { ...fields, error: outcome.error, retry_in_ms: delay });
    } catch (err) {
      // The row stays pending and is sent again later: at least once, never lost.
      logger.error("webhook outcome not recorded", { ...fields, error: errorText(err) });
    }
  }

  async function attemptDelivery(row: DueWebhookDelivery, sentAt: number): Promise<AttemptOutcome> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": WEBHOOK_USER_AGENT,
      "webhook-id": row.event_id,
      "webhook-timestamp": String(Math.floor(sentAt / 1000)),
    };
    const secret = row.webhook_secret ?? deps.defaultSecret;
    if (secret) {
      try {
        headers["webhook-signature"] = new Webhook(secret).sign(row.event_id, new Date(sentAt), row.payload);
      } catch {
        // Sending unsigned would downgrade a receiver that expects signatures; retrying cannot fix the
        // secret. The error text deliberately says nothing about the secret's value.
        const which = row.webhook_secret ? "the job's webhook secret" : "FOREMAN_WEBHOOK_SECRET";
        return { ok: false, status: null, error: `${which} is not a valid whsec_<base64> secret`, permanent: true };
      }
    }
    const timeout = AbortSignal.timeout(cfg.timeoutMs);
    try {
      const res = await fetchImpl(row.url, {
        method: "POST",
        headers,
        body: row.payload,
        signal: AbortSignal.any([timeout, stopping.signal]),
        // Following a 301/302 would turn the POST into a GET without the body; only a 2xx counts.
        redirect: "manual",
      });
      // The answer's body is not needed; dropping it frees the connection.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
      return { ok: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      if (stopping.signal.aborted && !timeout.aborted) return { ok: false, stopped: true };
      if (timeout.aborted) return { ok: false, status: null, error: `timed out after ${cfg.timeoutMs} ms` };
      return { ok: false, status: null, error: errorText(err) };
    }
  }

  async function loop(): Promise<void> {
    while (running) {
      let delay = cfg.pollIntervalMs;
      try {
        const at = now();
        startDue(at);
        // Whatever was due at `at` and did not start is in flight or waiting for a slot, and a finishing
        // delivery wakes the loop; so sleep only until the next row that becomes due later.
        const due = outbox.nextDueAt(at);
        if (due !== null) delay = Math.min(Math.max(due - now(), 0), cfg.pollIntervalMs);
      } catch (err) {
        // A locked or briefly unreadable database must not take the worker down; try again next poll.
        logger.error("webhook outbox read failed", { error: errorText(err) });
      }
      if (running) await sleep(delay);
    }
  }

  return {
    start(): void {
      if (running) return;
      running = true;
      loopDone = loop();
    },
    /** Stops reading the outbox and waits for in-flight deliveries, aborting them after `stopGraceMs`. */
    async stop(): Promise<void> {
      running = false;
      wake();
      await loopDone;
      loopDone = null;
      const pending = () => Promise.allSettled([...inFlight.values()]);
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, cfg.stopGraceMs);
      });
      await Promise.race([pending(), grace]);
      clearTimeout(graceTimer);
      if (inFlight.size > 0) {
        stopping.abort();
        await pending();
      }
      // A later start() or runOnce() sends normally again.
      stopping = new AbortController();
      kicked = false;
    },
    /** New outbox rows may be due: read the outbox now instead of at the next poll. */
    kick(): void {
      wake();
    },
    /** Starts every due delivery that fits and waits for them; resolves to the number attempted. */
    async runOnce(): Promise<number> {
      const started = startDue();
      await Promise.all(started);
      return started.length;
    },
  };
}

export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;

/**
 * A short reason for the log and the job's delivery view. fetch wraps network errors as "fetch failed"
 * with the useful part (ECONNREFUSED, bad port, …) in `cause`, so that is preferred; no stack, no URL.
 */
function errorText(err: unknown): string {
  const outer = err as { message?: string; code?: string; cause?: unknown } | undefined;
  const source = (outer?.cause && typeof outer.cause === "object" ? outer.cause : outer) as
    | { message?: string; code?: string }
    | undefined;
  const message = source?.message || outer?.message || String(err);
  const code = source?.code;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
