import { type JobRecord, type Store, toJobView } from "@foreman/shared";
import { queuePositions } from "./queue-position.js";

/** The job with its artifacts and webhook deliveries (and, when given, its queue position). */
export function fullView(store: Store, job: JobRecord, position?: number) {
  return toJobView(job, {
    artifacts: store.artifacts.forJob(job.id),
    deliveries: job.webhook ? store.outbox.deliveriesForJob(job.id) : [],
    ...(position !== undefined ? { position } : {}),
  });
}

/** The full view, with the queue position computed when the job is queued. */
export function jobViewWithPosition(store: Store, starvationMs: number, job: JobRecord) {
  return fullView(store, job, job.state === "queued" ? queuePositions(store, starvationMs).get(job.id) : undefined);
}

/**
 * The 202's body. No relay file or queue position yet: the worker creates the relay when the job starts,
 * and a position costs a read of the whole queue, paid on GET by whoever asks for it.
 */
export function createdView(store: Store, job: JobRecord) {
  return toJobView(job, { deliveries: job.webhook ? store.outbox.deliveriesForJob(job.id) : [] });
}
