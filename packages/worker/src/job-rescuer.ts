import type { JobOutcomes, Logger, Store } from "@foreman/shared";
import { recoverInterruptedJobs } from "./recovery.js";

export interface JobRescuerOptions {
  store: Pick<Store, "transitions">;
  outcomes: JobOutcomes;
  logger: Logger;
  dataDir: string;
  /** The job this worker is running now: never rescued from under it. */
  currentJobId: () => string | null;
  intervalMs?: number;
}

/**
 * Ends or requeues jobs left in `loading` or `working` that this worker is not running. At activation that
 * is every such job (a previous worker died); afterwards it is a job whose ending could not be recorded
 * (the disk was full or the database read-only when its run ended): the rescuer retries on a period, so
 * such a job is settled once the store can write again instead of staying `working` forever.
 */
export function createJobRescuer(options: JobRescuerOptions) {
  const intervalMs = options.intervalMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;

  function runOnce(): number {
    try {
      const count = recoverInterruptedJobs({ ...options, except: options.currentJobId() });
      if (failing) options.logger.info("stranded jobs settled; the database accepts writes again", { count });
      failing = false;
      return count;
    } catch (err) {
      // Still failing: said once, retried on the next period.
      if (!failing) options.logger.error("could not settle stranded jobs", { error: (err as Error).message });
      failing = true;
      return 0;
    }
  }

  return {
    runOnce,
    start(): void {
      if (timer) return;
      runOnce();
      timer = setInterval(runOnce, intervalMs);
      timer.unref();
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

export type JobRescuer = ReturnType<typeof createJobRescuer>;
