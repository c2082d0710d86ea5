import { displayUrl, type ForemanConfig, type Store, sameModel } from "@foreman/shared";

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

/**
 * The whole picture for one glance (the status route and `foreman status`): the target, what it holds,
 * the worker, the queue, the webhook backlog and the last hour's jobs. Every read is an index lookup or a
 * small group: the route stays cheap with any number of jobs.
 */
export function statusView(store: Store, config: Pick<ForemanConfig, "ollamaUrl" | "embedModel">, now = Date.now()) {
  const target = store.target.get();
  const change = store.systemEvents.latestTargetChange();
  const holder = store.workerLease.holder();
  const fresh = store.workerLease.isFresh(holder);
  const current = holder?.currentJobId ? store.jobs.getForView(holder.currentJobId) : null;
  const currentSince = current ? (current.workingAt ?? current.loadingAt) : null;
  const queued = store.jobs.queueDepthByModel();
  const oldest = store.jobs.oldestQueuedAt();
  const resident = target?.resident ?? [];
  const embedder = config.embedModel;
  return {
    target: {
      url: displayUrl(config.ollamaUrl),
      reachable: target ? target.reachable : null,
      version: target?.version ?? null,
      since: change && (change.type === "target.up") === target?.reachable ? iso(change.at) : null,
      last_seen_at: iso(target?.lastSeenAt),
      last_checked_at: iso(target?.lastCheckedAt),
      error: target?.lastError ?? null,
    },
    models: {
      resident: resident.map((m) => ({
        name: m.name,
        expires_at: m.expires_at ?? null,
        size_vram: m.size_vram ?? null,
        embedder: embedder !== undefined && sameModel(m.name, embedder),
      })),
      embedder: embedder ? { name: embedder, resident: resident.some((m) => sameModel(m.name, embedder)) } : null,
    },
    worker: {
      active: fresh,
      standby: store.workerLease.standbys().length > 0,
      pid: holder?.pid ?? null,
      hostname: holder?.hostname ?? null,
      heartbeat_age_ms: holder ? now - holder.heartbeatAt : null,
      current_job:
        fresh && current
          ? {
              id: current.id,
              model: current.model,
              state: current.state,
              since: iso(currentSince),
              for_ms: currentSince === null ? null : now - currentSince,
            }
          : null,
    },
    queue: {
      depth: queued.reduce((n, q) => n + q.count, 0),
      oldest_queued_age_ms: oldest === null ? null : now - oldest,
      by_model: queued.map((q) => ({
        model: q.model,
        queued: q.count,
        oldest_queued_at: iso(q.oldest_created_at),
      })),
    },
    webhooks: { backlog: store.outbox.backlog() },
    jobs_last_hour: store.jobs.countsCreatedSince(now - 3_600_000),
  };
}

export type StatusView = ReturnType<typeof statusView>;
