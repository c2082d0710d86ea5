import type { Db } from "./database.js";

export interface ArtifactRecord {
  jobId: string;
  name: string;
  contentType: string;
  size: number;
  /** Relative to FOREMAN_DATA_DIR. */
  path: string;
  createdAt: number;
}

interface ArtifactRow {
  job_id: string;
  name: string;
  content_type: string;
  size: number;
  path: string;
  created_at: number;
}

const fromRow = (r: ArtifactRow): ArtifactRecord => ({
  jobId: r.job_id,
  name: r.name,
  contentType: r.content_type,
  size: r.size,
  path: r.path,
  createdAt: r.created_at,
});

/** The artifact index; the bytes live under FOREMAN_DATA_DIR/artifacts/<job id>/ (artifact-files.ts). */
export function createArtifactsStore(db: Db) {
  const upsert = db.prepare(
    `INSERT INTO artifacts (job_id, name, content_type, size, path, created_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (job_id, name) DO UPDATE SET content_type = excluded.content_type, size = excluded.size,
       path = excluded.path, created_at = excluded.created_at`,
  );
  const forJob = db.prepare<[string], ArtifactRow>("SELECT * FROM artifacts WHERE job_id = ? ORDER BY name");
  const one = db.prepare<[string, string], ArtifactRow>("SELECT * FROM artifacts WHERE job_id = ? AND name = ?");
  return {
    record(a: ArtifactRecord): void {
      upsert.run(a.jobId, a.name, a.contentType, a.size, a.path, a.createdAt);
    },
    forJob(jobId: string): ArtifactRecord[] {
      return forJob.all(jobId).map(fromRow);
    },
    get(jobId: string, name: string): ArtifactRecord | null {
      const row = one.get(jobId, name);
      return row ? fromRow(row) : null;
    },
  };
}

export type ArtifactsStore = ReturnType<typeof createArtifactsStore>;
