import { type JobRecord, type NewJob, type QueueTotals, type Store, UnavailableError } from "@foreman/shared";
import { queuePositions } from "./queue-position.js";

export interface QueueLimits {
  maxQueuedJobs: number;
  /** Bytes of the queued jobs' requests. */
  maxQueuedBytes: number;
  /** The drain order's starvation bound, for the new jobs' queue positions. */
  starvationMs: number;
}

/** A committed job and its place in the queue at that moment (counted once per batch). */
export interface CreatedJob {
  job: JobRecord;
  position: number | undefined;
}

/** What a refused caller is told to wait: the queue drains at the target's pace, so not a moment. */
export const QUEUE_FULL_RETRY_AFTER_S = 30;

/**
 * Group commit for job creation: the jobs requested within one turn of the event loop are committed in a
 * single transaction, and each caller is answered only after that commit (accepted still means durable:
 * nothing gets a 2xx before it is committed). Under load this turns one WAL write per job into one per burst; alone,
 * a request waits for nothing but its own commit.
 *
 * It is also where the queue's bounds are enforced, for every route that creates a job: a new job is
 * refused with a 503 while the committed queue plus the batch being gathered would exceed a limit. The
 * committed totals are one row kept by the schema, so the check costs the same with any queue size. Each
 * gateway checks on its own, so several gateways may overshoot a limit by one batch each.
 */
export function createJobBatcher(store: Store, onCommitted: () => void, limits: QueueLimits) {
  let pending: Array<{
    input: NewJob;
    withPosition: boolean;
    resolve: (created: CreatedJob) => void;
    reject: (err: unknown) => void;
  }> = [];
  let pendingBytes = 0;
  let scheduled = false;
  // The committed totals as read when the batch being gathered took its first job (a refused job leaves
  // nothing pending, so the next one reads them afresh). This process commits nothing until the flush, so
  // only other processes can move them meanwhile: the worker only shrinks the queue, and other gateways may
  // overshoot by a batch anyway. One read per batch instead of one per job: the read transaction cost as
  // much as a tenth of POST /jobs's CPU.
  let committedTotals: QueueTotals | undefined;

  function flush(): void {
    scheduled = false;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    committedTotals = undefined;
    const committed: Array<{ job: JobRecord; withPosition: boolean; resolve: (created: CreatedJob) => void }> = [];
    try {
      const jobs = store.transitions.createJobs(batch.map((p) => p.input));
      for (const [i, p] of batch.entries())
        committed.push({ job: jobs[i]!, withPosition: p.withPosition, resolve: p.resolve });
    } catch {
      // One bad apple (a raced Idempotency-Key) rolled the batch back: commit them one by one, so each
      // caller gets its own outcome.
      for (const p of batch) {
        try {
          committed.push({
            job: store.transitions.createJob(p.input),
            withPosition: p.withPosition,
            resolve: p.resolve,
          });
        } catch (err) {
          p.reject(err);
        }
      }
    }
    onCommitted();
    // One count for the whole batch: its cost grows with the queue, so it is paid once per commit, not per job,
    // and only for the jobs whose callers are told it (a synchronous stream waits for its first token instead).
    let positions = new Map<string, number>();
    try {
      const told = committed.filter((c) => c.withPosition).map((c) => c.job);
      if (told.length > 0) positions = queuePositions(store, limits.starvationMs, told);
    } catch {
      // A position is information, not the answer: the jobs are committed whatever happens here.
    }
    for (const c of committed) c.resolve({ job: c.job, position: positions.get(c.job.id) });
  }

  function admit(bytes: number): void {
    if (pending.length === 0 || committedTotals === undefined) committedTotals = store.queueTotals.get();
    const totals = committedTotals;
    const jobs = totals.jobs + pending.length;
    if (jobs >= limits.maxQueuedJobs) {
      throw new UnavailableError(
        `queue is full: ${jobs} jobs queued (FOREMAN_MAX_QUEUED_JOBS=${limits.maxQueuedJobs}); retry later`,
        QUEUE_FULL_RETRY_AFTER_S,
      );
    }
    const queuedBytes = totals.bytes + pendingBytes;
    // A job alone in the queue is always admitted, so a limit below the body limit cannot refuse it forever.
    if (jobs > 0 && queuedBytes + bytes > limits.maxQueuedBytes) {
      throw new UnavailableError(
        `queue is full: queued requests hold ${queuedBytes} bytes and this one ${bytes} (FOREMAN_MAX_QUEUED_BYTES=${limits.maxQueuedBytes}); retry later`,
        QUEUE_FULL_RETRY_AFTER_S,
      );
    }
  }

  return {
    /**
     * Commits `input` with the next batch. `bytes` is the size of the request it came from, counted against
     * FOREMAN_MAX_QUEUED_BYTES until the commit makes the exact figure part of the queue's totals.
     * Rejects with an UnavailableError (503) when the queue is full. `withPosition` false: the caller is not
     * told the job's place in the queue, so it is not counted (its position is undefined).
     */
    create(input: NewJob, bytes = 0, withPosition = true): Promise<CreatedJob> {
      try {
        admit(bytes);
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise((resolve, reject) => {
        pending.push({ input, withPosition, resolve, reject });
        pendingBytes += bytes;
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}

export type JobBatcher = ReturnType<typeof createJobBatcher>;
