import type { JobRecord, NewJob, Store } from "@foreman/shared";

/**
 * Group commit for job creation: the jobs requested within one turn of the event loop are committed in a
 * single transaction, and each caller is answered only after that commit (accepted still means durable:
 * nothing gets a 2xx before it is committed). Under load this turns one WAL write per job into one per burst; alone,
 * a request waits for nothing but its own commit.
 */
export function createJobBatcher(store: Store, onCommitted: () => void) {
  let pending: Array<{ input: NewJob; resolve: (job: JobRecord) => void; reject: (err: unknown) => void }> = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const batch = pending;
    pending = [];
    try {
      const jobs = store.transitions.createJobs(batch.map((p) => p.input));
      for (const [i, p] of batch.entries()) p.resolve(jobs[i]!);
    } catch {
      // One bad apple (a raced Idempotency-Key) rolled the batch back: commit them one by one, so each
      // caller gets its own outcome.
      for (const p of batch) {
        try {
          p.resolve(store.transitions.createJob(p.input));
        } catch (err) {
          p.reject(err);
        }
      }
    }
    onCommitted();
  }

  return {
    create(input: NewJob): Promise<JobRecord> {
      return new Promise((resolve, reject) => {
        pending.push({ input, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}

export type JobBatcher = ReturnType<typeof createJobBatcher>;
