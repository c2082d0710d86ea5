import { type JobMode, type Logger, removeJobFiles, type Store } from "@foreman/shared";

export interface RetentionPrunerOptions {
  store: Store;
  logger: Logger;
  dataDir: string;
  retentionMs: number;
  /** Synchronous jobs' answers went to their callers: they are kept a shorter time (default: retentionMs). */
  syncRetentionMs?: number;
  intervalMs: number;
  /** Jobs deleted per transaction: small enough that gateways and the claim never wait long. */
  batchSize?: number;
  now?: () => number;
}

/**
 * Deletes finished jobs older than the retention period with everything that belongs to them: history,
 * outbox rows and artifact index (by cascade), then their relay and artifact files. Works in bounded
 * batches, yielding to the event loop between them, so a large backlog never stalls the worker's job.
 */
export function createRetentionPruner(options: RetentionPrunerOptions) {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  const batchSize = options.batchSize ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | null = null;

  async function pruneMode(mode: JobMode, retentionMs: number): Promise<number> {
    const cutoff = now() - retentionMs;
    let total = 0;
    for (;;) {
      const ids = store.retention.expiredJobIds(mode, cutoff, batchSize);
      if (ids.length === 0) break;
      store.retention.deleteJobs(ids);
      for (const id of ids) removeJobFiles(options.dataDir, id);
      total += ids.length;
      if (ids.length < batchSize) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total > 0) logger.info("pruned finished jobs", { count: total, mode, older_than_ms: retentionMs });
    return total;
  }

  async function runOnce(): Promise<number> {
    const asyncPruned = await pruneMode("async", options.retentionMs);
    return asyncPruned + (await pruneMode("sync", options.syncRetentionMs ?? options.retentionMs));
  }

  function schedule(): void {
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err: unknown) => {
          logger.warn("retention sweep failed", { error: (err as Error).message });
          return 0;
        })
        .finally(() => {
          running = null;
          if (timer) schedule();
        });
    }, options.intervalMs);
    timer.unref();
  }

  return {
    runOnce,
    start(): void {
      if (timer) return;
      schedule();
    },
    async stop(): Promise<void> {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}

export type RetentionPruner = ReturnType<typeof createRetentionPruner>;
