import fs from "node:fs";
import path from "node:path";
import { relayPath } from "./relay.js";
import type { ArtifactRecord } from "./store/artifacts.js";

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Artifact names are plain file names: no separators, no leading dot, nothing that can leave the job's folder. */
export function isSafeArtifactName(name: string): boolean {
  return SAFE_NAME.test(name) && !name.includes("..");
}

export function artifactDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, "artifacts", jobId);
}

/**
 * Writes an artifact's bytes under FOREMAN_DATA_DIR/artifacts/<job id>/ (via a temp file and a rename, so a
 * reader never sees half a file) and returns its index record.
 */
export function writeArtifact(
  dataDir: string,
  jobId: string,
  name: string,
  contentType: string,
  data: string | Buffer,
  now = Date.now(),
): ArtifactRecord {
  if (!isSafeArtifactName(name)) throw new Error(`unsafe artifact name ${JSON.stringify(name)}`);
  const dir = artifactDir(dataDir, jobId);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
  return {
    jobId,
    name,
    contentType,
    size: Buffer.byteLength(data),
    path: path.relative(dataDir, file),
    createdAt: now,
  };
}

/** The absolute file of an artifact record, refusing any path that would resolve outside the job's folder. */
export function resolveArtifactFile(dataDir: string, record: ArtifactRecord): string | null {
  const base = path.resolve(artifactDir(dataDir, record.jobId));
  const file = path.resolve(dataDir, record.path);
  return file.startsWith(base + path.sep) ? file : null;
}

/** Removes a job's relay and artifact folder (retention). */
export function removeJobFiles(dataDir: string, jobId: string): void {
  fs.rmSync(relayPath(dataDir, jobId), { force: true });
  fs.rmSync(artifactDir(dataDir, jobId), { recursive: true, force: true });
}
