import { type JobRecord, type Store, toJobView } from "@foreman/shared";
import { queuePosition } from "./queue-position.js";

/** The job with its artifacts and webhook deliveries (and, when given, its queue position). */
export function fullView(store: Store, job: JobRecord, position?: number) {
  return toJobView(job, {
    artifacts: store.artifacts.forJob(job.id),
    deliveries: job.webhook ? store.outbox.deliveriesForJob(job.id) : [],
    ...(position !== undefined ? { position } : {}),
  });
}

/** The full view, with the queue position counted when the job is queued. */
export function jobViewWithPosition(store: Store, starvationMs: number, job: JobRecord) {
  return fullView(store, job, queuePosition(store, starvationMs, job));
}

/**
 * The 202's body: the job as committed, with its place in the queue (counted once for its whole commit
 * batch). No relay file yet: the worker creates it when the job starts.
 */
export function createdView(store: Store, job: JobRecord, position?: number) {
  return toJobView(job, {
    deliveries: job.webhook ? store.outbox.deliveriesForJob(job.id) : [],
    ...(position !== undefined ? { position } : {}),
  });
}
