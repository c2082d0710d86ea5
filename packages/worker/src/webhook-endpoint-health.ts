import type { EndpointHealth } from "@foreman/shared";

/**
 * When a webhook endpoint is disabled, and when it is tried again (ADR 0015). Pure, so tests feed it tables
 * of worked examples; the dispatcher asks it before and after each attempt and the outbox store keeps the
 * answer.
 *
 * - A 2xx makes the endpoint healthy again, whatever it was (a success is what a trial waits for).
 * - A 410 Gone disables it at once: the receiver says the URL is gone for good (Standard Webhooks).
 * - Any other failure extends the current run of failures; once every attempt has failed for
 *   `disableAfterMs` and there have been at least `disableAfterFailures` of them, the endpoint is disabled.
 * - A disabled endpoint's deliveries are failed without an attempt until `disabledUntil`; after it, the
 *   next delivery is a trial: a success enables the endpoint, a failure disables it for another period.
 * - A failure that ends after a concurrent attempt disabled the endpoint changes nothing: the endpoint is
 *   disabled once, and its delivery is settled like the others.
 */
export interface EndpointRules {
  disableAfterMs: number;
  disableAfterFailures: number;
  disabledForMs: number;
}

/** What an attempt said about its endpoint (attempts refused by foreman's own policy say nothing). */
export type EndpointVerdict = { kind: "delivered" } | { kind: "gone" } | { kind: "failed"; error: string };

export interface EndpointChange {
  health: EndpointHealth | null;
  /** Set when this attempt disabled the endpoint: the reason, as the job's deliveries and the log show it. */
  disabledBecause: string | null;
}

/** Whether a delivery to the endpoint may be attempted now; false while it is disabled and not yet due a trial. */
export function endpointAccepts(health: EndpointHealth | null, now: number): boolean {
  return health?.disabledAt == null || (health.disabledUntil ?? 0) <= now;
}

export function endpointHealthAfter(
  health: EndpointHealth | null,
  verdict: EndpointVerdict,
  now: number,
  rules: EndpointRules,
): EndpointChange {
  if (verdict.kind === "delivered") return { health: null, disabledBecause: null };
  if (health !== null && !endpointAccepts(health, now)) return { health, disabledBecause: null };
  const failingSince = health?.failingSince ?? now;
  const consecutiveFailures = (health?.consecutiveFailures ?? 0) + 1;
  const disabled = (reason: string): EndpointChange => ({
    health: {
      failingSince,
      consecutiveFailures,
      disabledAt: now,
      disabledUntil: now + rules.disabledForMs,
      disabledReason: reason,
    },
    disabledBecause: reason,
  });
  if (verdict.kind === "gone") return disabled("it answered 410 Gone");
  if (health?.disabledAt != null) return disabled(`its trial delivery failed (${verdict.error})`);
  const failingFor = now - failingSince;
  if (
    rules.disableAfterMs > 0 &&
    failingFor >= rules.disableAfterMs &&
    consecutiveFailures >= rules.disableAfterFailures
  ) {
    return disabled(
      `every attempt failed for ${describeDuration(failingFor)} (${consecutiveFailures} attempts, last: ${verdict.error})`,
    );
  }
  return {
    health: { failingSince, consecutiveFailures, disabledAt: null, disabledUntil: null, disabledReason: null },
    disabledBecause: null,
  };
}

function describeDuration(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours >= 48) return `${Math.floor(hours / 24)} days`;
  if (hours >= 1) return `${Math.floor(hours)} h`;
  return `${Math.max(1, Math.floor(ms / 60_000))} min`;
}
