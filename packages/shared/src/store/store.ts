import type Database from "better-sqlite3";
import { createArtifactsStore } from "./artifacts.js";
import { createClaimStore } from "./claim.js";
import { type Db, openDatabase } from "./database.js";
import { createJobsStore } from "./jobs.js";
import { createMetricsStore } from "./metrics.js";
import { migrate } from "./migrate.js";
import { createOutboxStore } from "./outbox.js";
import { createQueuePositionStore } from "./queue-position.js";
import { createQueueTotalsStore } from "./queue-totals.js";
import { createRetentionStore } from "./retention.js";
import { createSystemEventsStore } from "./system-events.js";
import { createTargetStore } from "./target.js";
import { createTransitionsStore, type TransitionsOptions } from "./transitions.js";
import { createLeaseCheck, createWorkerLeaseStore } from "./worker-lease.js";

export interface StoreOptions {
  dbPath: string;
  synchronous?: "normal" | "full";
  workerStaleMs?: number;
  now?: () => number;
  defaultMaxAttempts?: number;
  /** Whether jobs are grouped by runner options as well as model (true when not given). */
  drainByRunnerOptions?: boolean;
  onTransition?: TransitionsOptions["onTransition"];
}

/**
 * The database and every store module over it, each with its statements prepared once. Both processes
 * open one of these at start (which applies pending migrations) and close it on shutdown.
 */
export function openStore(options: StoreOptions) {
  const db = openDatabase({ path: options.dbPath, synchronous: options.synchronous ?? "normal" });
  const migration = migrate(db);
  const now = options.now ?? Date.now;
  const probe = db.prepare(
    "INSERT INTO meta (key, value) VALUES ('ready_probe_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  );
  const artifacts = createArtifactsStore(db);
  const lease = createLeaseCheck(db);
  const metrics = createMetricsStore(db);
  const transitions = createTransitionsStore(db, {
    now,
    artifacts,
    lease,
    metrics,
    ...(options.defaultMaxAttempts !== undefined ? { defaultMaxAttempts: options.defaultMaxAttempts } : {}),
    ...(options.drainByRunnerOptions !== undefined ? { drainByRunnerOptions: options.drainByRunnerOptions } : {}),
    ...(options.onTransition ? { onTransition: options.onTransition } : {}),
  });
  const jobs = createJobsStore(db);
  return {
    db: db as Database.Database,
    migration,
    jobs,
    transitions,
    claims: createClaimStore(db, jobs, transitions, lease),
    queuePositions: createQueuePositionStore(db),
    outbox: createOutboxStore(db, { now, metrics }),
    artifacts,
    target: createTargetStore(db),
    retention: createRetentionStore(db),
    metrics,
    systemEvents: createSystemEventsStore(db, now),
    queueTotals: createQueueTotalsStore(db),
    workerLease: createWorkerLeaseStore(db, { staleMs: options.workerStaleMs ?? 10_000, now }),
    /** A real write, so readiness fails on a read-only file or a full disk, not only on a missing one. */
    probeWritable(): void {
      probe.run(String(now()));
    },
    close(): void {
      if (!db.open) return;
      try {
        // Fold the WAL back into the main file so a clean stop leaves a single, compact database.
        db.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        // Another process holds a read transaction; the checkpoint simply happens later.
      }
      db.close();
    },
  };
}

export type Store = ReturnType<typeof openStore>;
export type { Db };
