import type { Logger, ResidentKeys, Store } from "@foreman/shared";
import type { JobRunner, RunOutcome } from "./job-runner.js";

export interface QueueRunnerOptions {
  store: Store;
  runner: JobRunner;
  /** The worker models the target holds now, most recently used first (null when unknown): the drain prefers their jobs. */
  resident: () => ResidentKeys;
  logger: Logger;
  workerId: string;
  isActive: () => boolean;
  pollMs: number;
  starvationMs: number;
  /** False while the target is known to be down: nothing is claimed until it answers again. */
  targetUp: () => boolean;
  /** A job found the target unreachable (the job is queued again; the target is down from now on). */
  onUnreachable: () => void;
  /** How often a running job's cancel flag is re-read even without a wake-up (bounds cancel latency). */
  cancelCheckMs?: number;
  now?: () => number;
}

/**
 * The claim loop: runs exactly one job at a time, in drain-by-model order, for as long as jobs are queued.
 * It is woken by `kick()` (a gateway's wake-up, the target coming back) and by a slow fallback poll. While
 * the target is down it claims nothing: a job that finds the target gone goes back to the queue once, and
 * the loop waits for the target poller to see the target up (`targetUp()`), so an outage costs no state
 * events, model switches or attempts, however long it lasts.
 */
export function createQueueRunner(options: QueueRunnerOptions) {
  const { store, runner, logger } = options;
  const now = options.now ?? Date.now;
  let draining: Promise<void> | null = null;
  let stopping = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let cancelTimer: NodeJS.Timeout | undefined;
  let rerun = false;

  async function drain(): Promise<void> {
    while (!stopping && options.isActive() && options.targetUp()) {
      rerun = false;
      // Picked, not claimed: the runner claims it once its request is on its way to the target.
      const job = store.claims.peekNext({
        workerId: options.workerId,
        resident: options.resident(),
        starvationMs: options.starvationMs,
        now: now(),
      });
      if (!job) {
        if (rerun) continue;
        return;
      }
      // run() settles every job it was given, unexpected errors included (job-runner's failUnexpectedly).
      const outcome: RunOutcome = await runner.run(job);
      if (outcome === "unreachable") {
        options.onUnreachable();
        return;
      }
    }
  }

  function kick(): void {
    if (stopping) return;
    runner.checkCancel();
    if (draining) {
      rerun = true;
      return;
    }
    draining = drain()
      .catch((err: unknown) => {
        logger.error("claim loop failed", { error: (err as Error).stack ?? String(err) });
      })
      .finally(() => {
        draining = null;
      });
  }

  return {
    kick,
    /** The target is back: claim at once. */
    targetUp(): void {
      kick();
    },
    start(): void {
      stopping = false;
      const poll = () => {
        pollTimer = setTimeout(() => {
          kick();
          poll();
        }, options.pollMs);
      };
      poll();
      cancelTimer = setInterval(() => runner.checkCancel(), options.cancelCheckMs ?? 250);
      kick();
    },
    /**
     * Stops claiming. The current job may finish within `graceMs`; after that it is handed back (an async
     * job, or one that has not started answering, returns to the queue).
     */
    async stop(graceMs: number): Promise<void> {
      stopping = true;
      if (pollTimer) clearTimeout(pollTimer);
      if (cancelTimer) clearInterval(cancelTimer);
      if (!draining) return;
      const finished = await Promise.race([
        runner.idle().then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref()),
      ]);
      if (!finished) {
        logger.warn("grace period over; handing the current job back", { job_id: runner.currentJobId() });
        await runner.abortForShutdown();
      }
      await draining;
    },
  };
}

export type QueueRunner = ReturnType<typeof createQueueRunner>;
