import type { Job, JobState } from "@foreman/client";

/**
 * The gateway's operations routes as this CLI reads them: `GET /status`, `GET /events` and the history
 * that `GET /jobs/<id>?history=1` adds. Fields are named as they travel.
 */

export interface StatusResponse {
  target: {
    /** Without credentials. */
    url: string;
    reachable: boolean;
    version: string | null;
    /** Up since, or down since (ISO); null when unknown. */
    since: string | null;
    last_seen_at: string | null;
    last_checked_at: string | null;
    error: string | null;
  };
  models: {
    resident: Array<{ name: string; expires_at: string | null; size_vram: number | null; embedder: boolean }>;
    embedder: { name: string; resident: boolean } | null;
  };
  worker: {
    active: boolean;
    standby: boolean;
    pid: number | null;
    hostname: string | null;
    heartbeat_age_ms: number | null;
    current_job: { id: string; model: string; state: JobState; since: string; for_ms: number } | null;
  };
  queue: {
    depth: number;
    oldest_queued_age_ms: number | null;
    by_model: Array<{ model: string; queued: number; oldest_queued_at: string | null }>;
  };
  webhooks: { backlog: number };
  jobs_last_hour: Partial<Record<JobState, number>>;
}

export interface JobHistoryEntry {
  from: JobState | null;
  to: JobState;
  at: string;
  attempt: number;
  reason: string | null;
}

/** `GET /jobs/<id>?history=1`: the job, and its transitions when the gateway records them. */
export type JobWithHistory = Job & { history?: JobHistoryEntry[] };

/** The data of `target.*` and `model.*` events. */
export interface TargetEventData {
  at?: string;
  url?: string;
  model?: string;
  error?: string;
}
