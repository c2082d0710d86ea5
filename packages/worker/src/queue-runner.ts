import type { Logger, Store } from "@foreman/shared";
import type { JobRunner, RunOutcome } from "./job-runner.js";

export interface QueueRunnerOptions {
  store: Store;
  runner: JobRunner;
  /** The worker model the target holds now (null when unknown): the drain prefers its jobs. */
  residentModel: () => string | null;
  logger: Logger;
  workerId: string;
  isActive: () => boolean;
  pollMs: number;
  starvationMs: number;
  /** How often a running job's cancel flag is re-read even without a wake-up (bounds cancel latency). */
  cancelCheckMs?: number;
  now?: () => number;
}

const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 5000;

/**
 * The claim loop: runs exactly one job at a time, in drain-by-model order, for as long as jobs are queued.
 * It is woken by `kick()` (a gateway's wake-up, the target coming back) and by a slow fallback poll, and it
 * backs off exponentially while the target is unreachable, spending no attempt (SPEC §2.4).
 */
export function createQueueRunner(options: QueueRunnerOptions) {
  const { store, runner, logger } = options;
  const now = options.now ?? Date.now;
  let draining: Promise<void> | null = null;
  let stopping = false;
  let backoffMs = 0;
  let backoffUntil = 0;
  let pollTimer: NodeJS.Timeout | undefined;
  let cancelTimer: NodeJS.Timeout | undefined;
  let rerun = false;

  async function drain(): Promise<void> {
    while (!stopping && options.isActive() && now() >= backoffUntil) {
      rerun = false;
      const job = store.claims.claimNext({
        workerId: options.workerId,
        resident: options.residentModel(),
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
        backoffMs = backoffMs === 0 ? BACKOFF_START_MS : Math.min(backoffMs * 2, BACKOFF_MAX_MS);
        backoffUntil = now() + backoffMs;
        logger.debug("target unreachable; backing off", { backoff_ms: backoffMs });
        setTimeout(kick, backoffMs).unref();
        return;
      }
      backoffMs = 0;
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
    /** The target is back: retry at once instead of waiting out the backoff. */
    targetUp(): void {
      backoffMs = 0;
      backoffUntil = 0;
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
