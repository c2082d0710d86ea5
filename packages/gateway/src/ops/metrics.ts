import { renderLabels, type Store } from "@foreman/shared";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

/**
 * The families the worker records in SQLite (store/metrics.ts), with their type and help, so a gateway's
 * scrape renders them as Prometheus expects. A histogram's `_bucket`, `_sum` and `_count` rows share one.
 */
const STORED_FAMILIES: Record<string, { type: "counter" | "gauge" | "histogram"; help: string }> = {
  foreman_job_wait_seconds: { type: "histogram", help: "Time jobs waited in the queue before a worker claimed them." },
  foreman_job_load_seconds: {
    type: "histogram",
    help: "Time from claim to the target's first answer (includes any model load).",
  },
  foreman_job_run_seconds: { type: "histogram", help: "Time from the target's first answer to the job's end." },
  foreman_jobs_finished_total: { type: "counter", help: "Jobs that reached a terminal state, by model and state." },
  foreman_model_loads_total: { type: "counter", help: "Model loads on the target (observed from its answers)." },
  foreman_model_swaps_total: { type: "counter", help: "Loads that replaced another worker model." },
  foreman_generated_tokens_total: { type: "counter", help: "Tokens the target generated for jobs, by model." },
  foreman_generation_seconds_total: { type: "counter", help: "Time the target spent generating them, by model." },
  foreman_tokens_per_second: { type: "gauge", help: "Generation speed of the latest finished job, by model." },
  foreman_webhook_deliveries_total: { type: "counter", help: "Webhook delivery attempts, by outcome." },
};

const familyOf = (name: string) => name.replace(/_(bucket|sum|count)$/, "");

/** Renders the worker's stored series, every row of a family together under its HELP and TYPE. */
function renderStored(store: Store): string {
  const byFamily = new Map<string, string[]>();
  for (const row of store.metrics.rows()) {
    const family = STORED_FAMILIES[row.name] ? row.name : familyOf(row.name);
    const lines = byFamily.get(family) ?? [];
    lines.push(`${row.name}${row.labels ? `{${row.labels}}` : ""} ${row.value}`);
    byFamily.set(family, lines);
  }
  let out = "";
  for (const [family, lines] of byFamily) {
    const spec = STORED_FAMILIES[family];
    out += `# HELP ${family} ${spec?.help ?? "Recorded by the worker."}\n# TYPE ${family} ${spec?.type ?? "untyped"}\n`;
    out += `${lines.join("\n")}\n`;
  }
  return out;
}

/** Gauges read from the store at scrape time: the queue, the target, the worker, the webhook backlog. */
function renderLive(store: Store, now: number): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, series: Array<[Record<string, string>, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of series) {
      const l = renderLabels(labels);
      lines.push(`${name}${l ? `{${l}}` : ""} ${value}`);
    }
  };
  const depth: Array<[Record<string, string>, number]> = store.jobs
    .queueDepthByModel()
    .map((q) => [{ model: q.model, state: "queued" }, q.count]);
  for (const r of store.jobs.runningByModel()) depth.push([{ model: r.model, state: r.state }, r.count]);
  gauge("foreman_queue_depth", "Jobs waiting or running, by model and state.", depth);
  const oldest = store.jobs.oldestQueuedAt();
  gauge("foreman_queue_oldest_age_seconds", "Age of the oldest queued job (0 when none).", [
    [{}, oldest === null ? 0 : (now - oldest) / 1000],
  ]);
  const target = store.target.get();
  gauge("foreman_target_up", "Whether the worker's last poll reached the target.", [[{}, target?.reachable ? 1 : 0]]);
  gauge("foreman_target_last_seen_timestamp_seconds", "When the target last answered (Unix time).", [
    [{}, target?.lastSeenAt ? target.lastSeenAt / 1000 : 0],
  ]);
  const holder = store.workerLease.holder();
  gauge("foreman_worker_up", "Whether an active worker's heartbeat is fresh.", [
    [{}, store.workerLease.isFresh(holder) ? 1 : 0],
  ]);
  gauge("foreman_worker_heartbeat_age_seconds", "Age of the active worker's last heartbeat.", [
    [{}, holder ? (now - holder.heartbeatAt) / 1000 : 0],
  ]);
  gauge("foreman_webhook_backlog", "Webhook deliveries still pending.", [[{}, store.outbox.backlog()]]);
  return `${lines.join("\n")}\n`;
}

/** The gateway's own metrics (HTTP, embedding proxy, relay lag, process) and the scrape that adds the rest. */
export function createGatewayMetrics(store: Store) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "foreman_http_requests_total",
    help: "HTTP requests answered by this gateway, by route, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const requestSeconds = new Histogram({
    name: "foreman_http_request_duration_seconds",
    help: "Time to answer a request (to the end of the response, streams included), by route.",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [registry],
  });
  const embedSeconds = new Histogram({
    name: "foreman_embed_proxy_seconds",
    help: "Time to answer an embedding request through the pass-through, by route.",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const relayLag = new Histogram({
    name: "foreman_relay_lag_seconds",
    help: "Time from the worker appending a chunk to the relay to this gateway sending it.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  return {
    request(route: string, method: string, status: number, seconds: number, embed: boolean): void {
      requests.inc({ route, method, status: String(status) });
      requestSeconds.observe({ route }, seconds);
      if (embed) embedSeconds.observe({ route }, seconds);
    },
    relayLag(seconds: number): void {
      relayLag.observe(Math.max(0, seconds));
    },
    contentType: registry.contentType,
    async scrape(): Promise<string> {
      return (await registry.metrics()) + renderLive(store, Date.now()) + renderStored(store);
    },
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
