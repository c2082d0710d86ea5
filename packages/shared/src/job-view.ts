import { displayUrl } from "./display-url.js";
import { isTerminal, type JobEventType } from "./job-states.js";
import type { Metrics } from "./ollama-types.js";
import type { ArtifactRecord } from "./store/artifacts.js";
import type { JobRecord } from "./store/jobs.js";
import type { DeliveryView } from "./store/outbox.js";

export interface JobViewExtras {
  artifacts?: ArtifactRecord[];
  deliveries?: DeliveryView[];
  /** 1-based place in the drain order, for a queued job. */
  position?: number;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function artifactUrl(jobId: string, name: string): string {
  return `/jobs/${jobId}/artifacts/${encodeURIComponent(name)}`;
}

/**
 * The job as API callers and webhook receivers see it: secrets, the raw request and internal
 * columns are left out; timestamps are ISO strings; artifacts carry their URLs; a result too large to
 * inline is replaced by `result_url`.
 */
export function toJobView(job: JobRecord, extras: JobViewExtras = {}) {
  const artifacts = (extras.artifacts ?? []).map((a) => ({
    name: a.name,
    content_type: a.contentType,
    size: a.size,
    url: artifactUrl(job.id, a.name),
  }));
  const resultArtifact = artifacts.find((a) => a.name === "result.json");
  return {
    id: job.id,
    kind: job.kind,
    api: job.api,
    mode: job.mode,
    model: job.model,
    state: job.state,
    ...(extras.position !== undefined && job.state === "queued" ? { position: extras.position } : {}),
    ...(job.cancelRequestedAt !== null && !isTerminal(job.state) ? { cancel_requested: true } : {}),
    created_at: new Date(job.createdAt).toISOString(),
    queued_at: iso(job.queuedAt),
    loading_at: iso(job.loadingAt),
    working_at: iso(job.workingAt),
    ended_at: iso(job.endedAt),
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    error: job.error,
    metadata: job.metadata,
    metrics: job.metrics as Metrics | null,
    result: job.result ?? null,
    ...(job.result == null && resultArtifact ? { result_url: resultArtifact.url } : {}),
    artifacts,
    webhook: job.webhook
      ? {
          // The user and password of a webhook URL are credentials: sent as Basic auth, never shown.
          url: displayUrl(job.webhook.url),
          // POST /jobs accepts only event types (job-request.ts), so the stored strings are ones.
          events: (job.webhook.events as JobEventType[] | undefined) ?? null,
          ...(extras.deliveries
            ? {
                deliveries: extras.deliveries.map((d) => ({
                  event_id: d.event_id,
                  type: d.type,
                  status: d.status,
                  attempts: d.attempts,
                  last_status: d.last_status,
                  last_error: d.last_error,
                  next_attempt_at: iso(d.next_attempt_at),
                  delivered_at: iso(d.delivered_at),
                })),
              }
            : {}),
        }
      : null,
  };
}

export type JobView = ReturnType<typeof toJobView>;
