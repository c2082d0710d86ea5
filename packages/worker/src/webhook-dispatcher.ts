import {
  type DueDelivery,
  type EndpointHealth,
  type Logger,
  type OutboxStore,
  WEBHOOK_DEFAULTS,
  type WebhookSettings,
  webhookAddressPolicy,
  webhookEndpoint,
  webhookOrigin,
} from "@foreman/shared";
import { Webhook } from "standardwebhooks";
import { type EndpointVerdict, endpointAccepts, endpointHealthAfter } from "./webhook-endpoint-health.js";
import {
  createWebhookSender,
  decodeUserinfo,
  type ResolveHost,
  type SendWebhook,
  WebhookRefusedError,
} from "./webhook-request.js";

/** The outbox operations delivery needs; tests wrap them to inject database failures. */
export type WebhookOutbox = Pick<
  OutboxStore,
  | "dueDeliveries"
  | "markDelivered"
  | "scheduleRetry"
  | "markGivenUp"
  | "nextDueAt"
  | "failUnattempted"
  | "endpointHealth"
  | "saveEndpointHealth"
  | "disableEndpoint"
  | "forgetQuietEndpoints"
>;
export type DueWebhookDelivery = DueDelivery;

/** Settings default to WEBHOOK_DEFAULTS (the config's defaults); tests set only what they exercise. */
export interface WebhookDispatcherOptions extends Partial<WebhookSettings> {
  store: { outbox: WebhookOutbox };
  logger: Logger;
  /** Longest sleep between outbox reads, so rows written by another process are seen without a kick. */
  pollIntervalMs?: number;
  /** How long stop() lets in-flight deliveries finish before aborting them. */
  stopGraceMs?: number;
  now?: () => number;
  random?: () => number;
  /** Name resolution for deliveries (tests make names resolve to loopback). */
  resolve?: ResolveHost;
  /** Extra trusted certificate authorities for HTTPS receivers (tests). */
  ca?: string | Buffer;
  /** Replaces the HTTP exchange entirely (tests of what happens around it). */
  send?: SendWebhook;
}

export const WEBHOOK_USER_AGENT = "foreman-webhooks/1";

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

/**
 * A Retry-After header (delta-seconds or an HTTP date) as milliseconds from `now`, or null when absent or
 * unreadable. A date in the past is 0.
 */
export function parseRetryAfter(header: string | undefined, now: number): number | null {
  if (header === undefined) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/[a-z]/i.test(text)) return null;
  return Math.max(0, at - now);
}

type AttemptOutcome =
  | { ok: true; status: number }
  | {
      ok: false;
      status: number | null;
      error: string;
      /** Retrying cannot help (a secret that cannot sign, a URL foreman refuses): give up at once. */
      permanent?: boolean;
      /** What the attempt says about its endpoint; absent when the endpoint was never reached. */
      verdict?: EndpointVerdict;
      retryAfterMs?: number | null;
    }
  | { ok: false; stopped: true };

/** How many failing receivers are remembered for the slow lane; beyond it the oldest go back to the main one. */
const FAILING_ORIGINS_KEPT = 1000;
/** How often endpoints with no news are forgotten (see forgetQuietEndpoints). */
const FORGET_EVERY_MS = 60 * 60_000;

/**
 * Delivers the webhook outbox: at least once, in order per job, signed with Standard Webhooks, retried with
 * backoff until `retryForMs` has passed since the event. State lives in the outbox rows and the endpoint
 * table, so a restarted worker simply carries on. Deliveries run on their own loop, beside job processing: a
 * slow or dead receiver costs a socket, never a generation slot.
 *
 * One receiver cannot hold up the others (ADR 0015): at most `endpointConcurrency` deliveries go to one
 * receiver (scheme, host and port) at a time, and the rows behind them are skipped, not waited for; a
 * receiver whose last attempt failed is served from a lane of its own (another `concurrency` slots), so
 * hanging receivers fill that lane and never the one healthy receivers use; a 429/503 with Retry-After
 * pauses that receiver. An endpoint that answers 410, or fails for `disableAfterMs`, is disabled
 * (webhook-endpoint-health.ts).
 */
export function createWebhookDispatcher(deps: WebhookDispatcherOptions) {
  const { logger } = deps;
  const outbox = deps.store.outbox;
  const cfg = {
    timeoutMs: deps.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs,
    retryBaseMs: deps.retryBaseMs ?? WEBHOOK_DEFAULTS.retryBaseMs,
    retryMaxDelayMs: deps.retryMaxDelayMs ?? WEBHOOK_DEFAULTS.retryMaxDelayMs,
    retryForMs: deps.retryForMs ?? WEBHOOK_DEFAULTS.retryForMs,
    concurrency: Math.max(1, deps.concurrency ?? WEBHOOK_DEFAULTS.concurrency),
    endpointConcurrency: Math.max(1, deps.endpointConcurrency ?? WEBHOOK_DEFAULTS.endpointConcurrency),
    pollIntervalMs: deps.pollIntervalMs ?? WEBHOOK_DEFAULTS.pollIntervalMs,
    stopGraceMs: deps.stopGraceMs ?? WEBHOOK_DEFAULTS.stopGraceMs,
  };
  const rules = {
    disableAfterMs: deps.disableAfterMs ?? WEBHOOK_DEFAULTS.disableAfterMs,
    disableAfterFailures: WEBHOOK_DEFAULTS.disableAfterFailures,
    disabledForMs: deps.disabledForMs ?? WEBHOOK_DEFAULTS.disabledForMs,
  };
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const send =
    deps.send ??
    createWebhookSender({
      policy: webhookAddressPolicy(deps.allowedHosts ?? []),
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
      ...(deps.ca ? { ca: deps.ca } : {}),
    });

  type Lane = "main" | "failing";
  /** One delivery per job at a time: the key is the job id, which is what keeps each job's events in order. */
  const inFlight = new Map<string, { promise: Promise<void>; rowId: number; origin: string; lane: Lane }>();
  const perOrigin = new Map<string, number>();
  const perLane: Record<Lane, number> = { main: 0, failing: 0 };
  /** Receivers whose last attempt failed, oldest failure first: they are served from the failing lane. */
  const failingOrigins = new Set<string>();
  /** Receivers that asked (Retry-After) not to be called before a time. */
  const pausedUntil = new Map<string, number>();
  let lastForget = Number.NEGATIVE_INFINITY;
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

  function markFailing(origin: string, failed: boolean): void {
    failingOrigins.delete(origin);
    if (!failed) return;
    failingOrigins.add(origin);
    if (failingOrigins.size > FAILING_ORIGINS_KEPT) failingOrigins.delete(failingOrigins.values().next().value!);
  }

  /** Receivers that may take no delivery now: at their own limit, or paused by a Retry-After. */
  function blockedOrigins(at: number): Set<string> {
    const blocked = new Set<string>();
    for (const [origin, count] of perOrigin) if (count >= cfg.endpointConcurrency) blocked.add(origin);
    for (const [origin, until] of pausedUntil) {
      if (until > at) blocked.add(origin);
      else pausedUntil.delete(origin);
    }
    return blocked;
  }

  /**
   * Starts the due deliveries that fit in the free slots of both lanes; synchronous up to the first await of
   * each. Throws when the outbox cannot be read.
   */
  function startDue(at: number = now()): Promise<void>[] {
    const started: Promise<void>[] = [];
    const blocked = blockedOrigins(at);
    for (const lane of ["main", "failing"] as const) {
      // A receiver that reaches its limit during this pass is left out of the next read, which goes on to
      // rows further down; each pass blocks at least one more receiver, so this ends.
      for (;;) {
        const free = cfg.concurrency - perLane[lane];
        if (free <= 0) break;
        const failing = [...failingOrigins];
        const filter =
          lane === "main"
            ? { except: [...blocked, ...failing] }
            : { only: failing.filter((origin) => !blocked.has(origin)) };
        if (filter.only?.length === 0) break;
        // Heads of jobs already in flight come back too (they are still pending); ask for enough to skip them.
        const rows = outbox.dueDeliveries(free + inFlight.size, at, filter);
        let newlyBlocked = false;
        for (const row of rows) {
          if (perLane[lane] >= cfg.concurrency) break;
          if (inFlight.has(row.job_id)) continue;
          const origin = webhookOrigin(row.url);
          if (blocked.has(origin)) {
            newlyBlocked = true;
            continue;
          }
          started.push(begin(row, origin, lane));
          if ((perOrigin.get(origin) ?? 0) >= cfg.endpointConcurrency) blocked.add(origin);
        }
        if (!newlyBlocked) break;
      }
    }
    return started;
  }

  function begin(row: DueWebhookDelivery, origin: string, lane: Lane): Promise<void> {
    perOrigin.set(origin, (perOrigin.get(origin) ?? 0) + 1);
    perLane[lane]++;
    const delivery = deliver(row, origin)
      .catch((err: unknown) => {
        // deliver() records its own failures; this only keeps a bug from becoming an unhandled rejection.
        logger.error("webhook delivery crashed", { job_id: row.job_id, error: errorText(err) });
      })
      .finally(() => {
        inFlight.delete(row.job_id);
        perLane[lane]--;
        const left = (perOrigin.get(origin) ?? 1) - 1;
        if (left > 0) perOrigin.set(origin, left);
        else perOrigin.delete(origin);
        // The job's next event (or another job's, waiting for this slot) may be due right now.
        wake();
      });
    inFlight.set(row.job_id, { promise: delivery, rowId: row.id, origin, lane });
    return delivery;
  }

  async function deliver(row: DueWebhookDelivery, origin: string): Promise<void> {
    const endpoint = webhookEndpoint(row.url);
    const attempt = row.attempts + 1;
    const fields = { job_id: row.job_id, event: row.type, event_id: row.event_id, attempt };
    try {
      const health = outbox.endpointHealth(endpoint);
      if (!endpointAccepts(health, now())) {
        const error = disabledError(health!);
        outbox.failUnattempted(row.id, error);
        logger.debug("webhook delivery skipped", { ...fields, endpoint, error });
        return;
      }
    } catch (err) {
      // The row stays pending and is looked at again later: at least once, never lost.
      logger.error("webhook endpoint state not read", { ...fields, error: errorText(err) });
      return;
    }

    const startedAt = now();
    const outcome = await attemptDelivery(row, startedAt);
    if ("stopped" in outcome) return;
    const at = now();
    const logFields = { ...fields, http_status: outcome.status, duration_ms: at - startedAt };
    markFailing(origin, !outcome.ok && outcome.verdict !== undefined);
    try {
      const verdict: EndpointVerdict | undefined = outcome.ok ? { kind: "delivered" } : outcome.verdict;
      if (verdict) {
        // Read again: a concurrent attempt to the same endpoint may have disabled it meanwhile.
        const health = outbox.endpointHealth(endpoint);
        const change = endpointHealthAfter(health, verdict, at, rules);
        if (change.disabledBecause !== null) {
          const error = disabledError(change.health!);
          // This row first, as an attempt (its status is the one that disabled the endpoint), then the rest.
          if (!outcome.ok) outbox.markGivenUp(row.id, { status: outcome.status, error, at });
          const inFlightRows = [...inFlight.values()].map((d) => d.rowId);
          const settled = outbox.disableEndpoint(endpoint, change.health!, error, { at, inFlight: inFlightRows });
          logger.warn("webhook endpoint disabled", {
            ...logFields,
            endpoint,
            reason: change.disabledBecause,
            deliveries_failed: settled + 1,
            trial_at: new Date(change.health!.disabledUntil!).toISOString(),
          });
          return;
        }
        if (change.health !== health) outbox.saveEndpointHealth(endpoint, change.health, at);
        if (!outcome.ok && change.health !== null && !endpointAccepts(change.health, at)) {
          const error = disabledError(change.health);
          outbox.markGivenUp(row.id, { status: outcome.status, error, at });
          logger.debug("webhook delivery given up", { ...logFields, endpoint, error });
          return;
        }
      }
      if (outcome.ok) {
        outbox.markDelivered(row.id, outcome.status, at);
        logger.debug("webhook delivered", logFields);
        return;
      }
      const failure = { status: outcome.status, error: outcome.error };
      if (outcome.permanent || at - row.created_at > cfg.retryForMs) {
        outbox.markGivenUp(row.id, { ...failure, at });
        logger.warn("webhook delivery given up", {
          ...logFields,
          error: outcome.error,
          retried_for_ms: at - row.created_at,
        });
        return;
      }
      // Never sooner than the receiver asked, nor than our own backoff; never later than the longest delay.
      const backoff = webhookRetryDelay(row.attempts, cfg, random);
      const asked = outcome.retryAfterMs ?? null;
      const delay = Math.min(Math.max(backoff, asked ?? 0), cfg.retryMaxDelayMs);
      if (asked !== null) pausedUntil.set(origin, at + Math.min(asked, cfg.retryMaxDelayMs));
      outbox.scheduleRetry(row.id, { ...failure, nextAttemptAt: at + delay });
      logger.warn("webhook delivery failed", {
        ...logFields,
        error: outcome.error,
        retry_in_ms: delay,
        ...(asked !== null ? { retry_after_ms: asked } : {}),
      });
    } catch (err) {
      // The row stays pending and is sent again later: at least once, never lost.
      logger.error("webhook outcome not recorded", { ...logFields, error: errorText(err) });
    }
  }

  async function attemptDelivery(row: DueWebhookDelivery, sentAt: number): Promise<AttemptOutcome> {
    let url: URL;
    try {
      url = new URL(row.url);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
    } catch {
      return { ok: false, status: null, error: "the webhook URL is not an http(s) URL", permanent: true };
    }
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
      const answer = await send({
        url,
        headers,
        body: row.payload,
        signal: AbortSignal.any([timeout, stopping.signal]),
      });
      const { status } = answer;
      if (status >= 200 && status < 300) return { ok: true, status };
      return {
        ok: false,
        status,
        error: `HTTP ${status}`,
        verdict: status === 410 ? { kind: "gone" } : { kind: "failed", error: `HTTP ${status}` },
        retryAfterMs: status === 429 || status === 503 ? parseRetryAfter(answer.retryAfter, now()) : null,
      };
    } catch (err) {
      if (stopping.signal.aborted && !timeout.aborted) return { ok: false, stopped: true };
      if (err instanceof WebhookRefusedError) {
        // Not the endpoint's fault, and not something a retry changes: the job shows why, once.
        return {
          ok: false,
          status: null,
          error: `refused: ${err.message}; FOREMAN_WEBHOOK_ALLOWED_HOSTS can allow it`,
          permanent: true,
        };
      }
      const error = timeout.aborted ? `timed out after ${cfg.timeoutMs} ms` : scrub(errorText(err), url);
      return { ok: false, status: null, error, verdict: { kind: "failed", error } };
    }
  }

  async function loop(): Promise<void> {
    while (running) {
      let delay = cfg.pollIntervalMs;
      try {
        const at = now();
        startDue(at);
        // Whatever was due at `at` and did not start is in flight or waiting for a slot, and a finishing
        // delivery wakes the loop; so sleep only until the next row that becomes due later, or until a
        // paused receiver may be called again.
        const due = outbox.nextDueAt(at);
        if (due !== null) delay = Math.min(Math.max(due - now(), 0), cfg.pollIntervalMs);
        for (const until of pausedUntil.values()) delay = Math.min(delay, Math.max(until - now(), 0));
        if (at - lastForget >= FORGET_EVERY_MS) {
          lastForget = at;
          outbox.forgetQuietEndpoints(at - Math.max(rules.disableAfterMs, rules.disabledForMs));
        }
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
      const pending = () => Promise.allSettled([...inFlight.values()].map((d) => d.promise));
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

function disabledError(health: EndpointHealth): string {
  return `endpoint disabled since ${new Date(health.disabledAt!).toISOString()}: ${health.disabledReason}`;
}

/**
 * A short reason for the log and the job's delivery view. Network errors carry the useful part (ECONNREFUSED,
 * bad port, …) in `code` or `cause`, so that is preferred; no stack, no URL.
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

/** Last line of defence: whatever an error says, the URL's user and password never reach a log or a job. */
function scrub(text: string, url: URL): string {
  let out = text;
  for (const part of [url.password, url.username, decodeUserinfo(url.password), decodeUserinfo(url.username)]) {
    if (part.length >= 3) out = out.split(part).join("[redacted]");
  }
  return out;
}
