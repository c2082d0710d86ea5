import type { Job } from "@foreman/client";
import { formatDuration, msBetween, msSince, oneLine } from "./format.js";

/** Time from submission until the worker took the job (until now while it waits). */
export function waitedMs(job: Job, now: number): number | null {
  if (job.loading_at) return msBetween(job.created_at, job.loading_at);
  if (job.state === "queued") return msSince(job.created_at, now);
  return null;
}

/** Time from being taken until the end (until now while it runs). */
export function ranMs(job: Job, now: number): number | null {
  if (!job.loading_at) return null;
  return job.ended_at ? msBetween(job.loading_at, job.ended_at) : msSince(job.loading_at, now);
}

/** The one thing worth saying about a job in a list: its place in the queue, its error, a pending cancel. */
export function jobNote(job: Job, maxLength = 60): string {
  if (job.state === "queued" && job.position !== undefined) return `position ${job.position}`;
  if (job.cancel_requested) return "cancel requested";
  if (job.error) return oneLine(job.error, maxLength);
  return "";
}

export function formatMs(ms: number | null): string {
  return ms === null ? "-" : formatDuration(ms);
}
