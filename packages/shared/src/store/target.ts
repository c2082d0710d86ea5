import type { Db } from "./database.js";

export interface ResidentModel {
  name: string;
  expires_at?: string;
  size_vram?: number;
}

export interface TargetStatus {
  reachable: boolean;
  version: string | null;
  resident: ResidentModel[];
  lastSeenAt: number | null;
  lastCheckedAt: number;
  lastError: string | null;
  /** When the current outage was first seen (null while the target is up). */
  downSince: number | null;
}

/** What the worker's target poller last observed, for the gateway's readiness route. */
export function createTargetStore(db: Db) {
  const select = db.prepare<
    [],
    {
      reachable: number;
      version: string | null;
      resident: string;
      last_seen_at: number | null;
      last_checked_at: number;
      last_error: string | null;
      down_since: number | null;
    }
  >("SELECT * FROM target_status WHERE id = 1");
  const upsert = db.prepare(
    `INSERT INTO target_status (id, reachable, version, resident, last_seen_at, last_checked_at, last_error, down_since)
     VALUES (1, @reachable, @version, @resident, @last_seen_at, @last_checked_at, @last_error,
       CASE WHEN @reachable = 1 THEN NULL ELSE @last_checked_at END)
     ON CONFLICT (id) DO UPDATE SET reachable = excluded.reachable,
       down_since = CASE WHEN excluded.reachable = 1 THEN NULL
         ELSE COALESCE(target_status.down_since, excluded.last_checked_at) END,
       version = COALESCE(excluded.version, target_status.version),
       resident = excluded.resident,
       last_seen_at = COALESCE(excluded.last_seen_at, target_status.last_seen_at),
       last_checked_at = excluded.last_checked_at, last_error = excluded.last_error`,
  );
  return {
    get(): TargetStatus | null {
      const row = select.get();
      if (!row) return null;
      return {
        reachable: row.reachable === 1,
        version: row.version,
        resident: JSON.parse(row.resident) as ResidentModel[],
        lastSeenAt: row.last_seen_at,
        lastCheckedAt: row.last_checked_at,
        lastError: row.last_error,
        downSince: row.down_since,
      };
    },
    record(status: Omit<TargetStatus, "lastSeenAt" | "downSince"> & { lastSeenAt?: number | null }): void {
      upsert.run({
        reachable: status.reachable ? 1 : 0,
        version: status.version,
        resident: JSON.stringify(status.resident),
        last_seen_at: status.reachable ? (status.lastSeenAt ?? status.lastCheckedAt) : null,
        last_checked_at: status.lastCheckedAt,
        last_error: status.lastError,
      });
    },
  };
}

export type TargetStore = ReturnType<typeof createTargetStore>;
