import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { relayPath, relayTranscript } from "./relay.js";
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

/**
 * The transcript is not stored twice: its artifact record points at the job's relay, whose last attempt's
 * data lines are the transcript, and it is cut from there when it is read.
 */
export const TRANSCRIPT_ARTIFACT = "transcript.ndjson";

/** The index record of a job's transcript, backed by its relay (`size` is the transcript's, in bytes). */
export function relayTranscriptRecord(dataDir: string, jobId: string, now = Date.now()): ArtifactRecord | null {
  const transcript = relayTranscript(dataDir, jobId);
  if (!transcript) return null;
  return {
    jobId,
    name: TRANSCRIPT_ARTIFACT,
    contentType: "application/x-ndjson",
    size: Buffer.byteLength(transcript),
    path: path.relative(dataDir, relayPath(dataDir, jobId)),
    createdAt: now,
  };
}

/**
 * An artifact's bytes, refusing any record whose path resolves outside the job's own files (its artifact
 * folder, or its relay for the transcript); null when refused or gone.
 */
export function openArtifact(dataDir: string, record: ArtifactRecord): Readable | null {
  const file = path.resolve(dataDir, record.path);
  if (file === path.resolve(relayPath(dataDir, record.jobId))) {
    if (record.name !== TRANSCRIPT_ARTIFACT || !fs.existsSync(file)) return null;
    return Readable.from([relayTranscript(dataDir, record.jobId)]);
  }
  const base = path.resolve(artifactDir(dataDir, record.jobId));
  if (!file.startsWith(base + path.sep) || !fs.existsSync(file)) return null;
  return fs.createReadStream(file);
}

/** Removes a job's relay and artifact folder (retention). */
export function removeJobFiles(dataDir: string, jobId: string): void {
  fs.rmSync(relayPath(dataDir, jobId), { force: true });
  fs.rmSync(artifactDir(dataDir, jobId), { recursive: true, force: true });
}
