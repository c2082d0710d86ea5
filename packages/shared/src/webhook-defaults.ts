import type { ForemanConfig } from "./config.js";

/**
 * Every webhook delivery setting and its default, in one place. config.ts validates and documents the
 * FOREMAN_WEBHOOK_* keys with these defaults; the worker's dispatcher takes a `WebhookSettings` made from
 * the config, and falls back on the same defaults for whatever a test leaves out.
 */
export const WEBHOOK_DEFAULTS = Object.freeze({
  /** One attempt, for the whole exchange (connect, send, status line). */
  timeoutMs: 10_000,
  retryBaseMs: 1_000,
  retryMaxDelayMs: 5 * 60_000,
  /** How long after the event was recorded a failing delivery is still retried. */
  retryForMs: 24 * 60 * 60_000,
  /** Deliveries in flight at once, over all receivers (each job's own events always go one at a time). */
  concurrency: 8,
  /** Deliveries in flight at once to one receiver (scheme, host and port), so one slow receiver cannot take every slot. */
  endpointConcurrency: 2,
  /**
   * An endpoint whose every attempt has failed for this long is disabled. Five days outlasts a long
   * weekend's outage and is what Svix, the Standard Webhooks authors' service, uses; 0 never disables
   * on failures (a 410 still does).
   */
  disableAfterMs: 5 * 24 * 60 * 60_000,
  /**
   * …and only after at least this many failed attempts in a row, so two failures days apart with no
   * traffic between them are not mistaken for an outage. A fixed rule, not a key: it only guards the period.
   */
  disableAfterFailures: 10,
  /** A disabled endpoint gets one trial delivery again after this long; a success enables it again. */
  disabledForMs: 24 * 60 * 60_000,
  /** Longest sleep between outbox reads, so rows written by another process are seen without a kick. */
  pollIntervalMs: 5_000,
  /** How long stop() lets in-flight deliveries finish before aborting them. */
  stopGraceMs: 5_000,
});

/** What the dispatcher is configured with: the FOREMAN_WEBHOOK_* keys, by meaning. */
export interface WebhookSettings {
  timeoutMs: number;
  retryBaseMs: number;
  retryMaxDelayMs: number;
  retryForMs: number;
  concurrency: number;
  endpointConcurrency: number;
  disableAfterMs: number;
  disabledForMs: number;
  /** FOREMAN_WEBHOOK_ALLOWED_HOSTS, as checked by parseWebhookAllowlist. */
  allowedHosts: readonly string[];
  /** FOREMAN_WEBHOOK_SECRET: signs the events of jobs that have no secret of their own. */
  defaultSecret?: string | undefined;
}

export function webhookSettings(config: ForemanConfig): WebhookSettings {
  return {
    timeoutMs: config.webhookTimeoutMs,
    retryBaseMs: config.webhookRetryBaseMs,
    retryMaxDelayMs: config.webhookRetryMaxDelayMs,
    retryForMs: config.webhookRetryForMs,
    concurrency: config.webhookConcurrency,
    endpointConcurrency: config.webhookEndpointConcurrency,
    disableAfterMs: config.webhookDisableAfterMs,
    disabledForMs: config.webhookDisabledForMs,
    allowedHosts: config.webhookAllowedHosts,
    defaultSecret: config.webhookSecret,
  };
}
