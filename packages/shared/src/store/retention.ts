import type { Db } from "./database.js";
import type { JobMode } from "./jobs.js";

/**
 * Deleting finished jobs past their retention period. Deleting a job row removes its history, outbox rows
 * and artifact index with it (foreign keys with ON DELETE CASCADE); the files are the caller's to remove.
 */
export function createRetentionStore(db: Db) {
  const selectExpired = db.prepare<[string, number, number], { id: string }>(
    `SELECT id FROM jobs INDEXED BY jobs_ended_by_mode
      WHERE mode = ? AND ended_at IS NOT NULL AND ended_at < ? ORDER BY ended_at LIMIT ?`,
  );
  const deleteJob = db.prepare("DELETE FROM jobs WHERE id = ?");
  const deleteBatch = db.transaction((ids: string[]) => {
    for (const id of ids) deleteJob.run(id);
  });
  return {
    /** Up to `limit` ids of jobs of this mode that ended before `cutoff`, oldest first. */
    expiredJobIds(mode: JobMode, cutoff: number, limit: number): string[] {
      return selectExpired.all(mode, cutoff, limit).map((r) => r.id);
    },
    /** Deletes the jobs (and, by cascade, everything recorded about them) in one transaction. */
    deleteJobs(ids: string[]): void {
      deleteBatch.immediate(ids);
    },
  };
}

export type RetentionStore = ReturnType<typeof createRetentionStore>;
