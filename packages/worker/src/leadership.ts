import os from "node:os";
import type { Logger, ResidentKeys, Store } from "@foreman/shared";
import { ulid } from "ulid";

export interface LeadershipOptions {
  store: Store;
  logger: Logger;
  heartbeatMs: number;
  /** Called when this worker becomes the active one. */
  onActive?: () => void;
  /** Called when this worker loses the lease (it stalled past the stale bound and another took over). */
  onLost?: () => void;
  /** The job this worker is running, written with each heartbeat for the readiness route. */
  currentJobId?: () => string | null;
  /** This worker's id in the lease (a fresh ULID when not given). */
  workerId?: string;
  /**
   * The worker models the target holds now, with their runner options, most recently used first, written
   * with each heartbeat for queue positions.
   */
  resident?: () => ResidentKeys;
  /** How many worker models it keeps resident at most (1 when not given), written beside them. */
  workerSlots?: number;
}

/**
 * Exactly one active worker per database. The active worker renews the lease with each
 * heartbeat; any other worker stays a standby, says so once in its log, and retries on the same beat, so it
 * takes over as soon as the active one stops or its heartbeat goes stale.
 */
export function createLeadership(options: LeadershipOptions) {
  const { store, logger } = options;
  const me = { workerId: options.workerId ?? ulid(), pid: process.pid, hostname: os.hostname() };
  let active = false;
  let timer: NodeJS.Timeout | undefined;
  let standbyLogged = false;

  function runOnce(): void {
    try {
      if (active) {
        const beating = store.workerLease.heartbeat(
          me.workerId,
          options.currentJobId?.() ?? null,
          options.resident?.() ?? null,
          options.workerSlots ?? 1,
        );
        if (beating) logger.debug("heartbeat", { worker_id: me.workerId });
        if (!beating) {
          active = false;
          standbyLogged = false;
          logger.error("lost the worker lease to another worker; standing by", { worker_id: me.workerId });
          options.onLost?.();
        }
        return;
      }
      const result = store.workerLease.tryAcquire(me);
      if (result.acquired) {
        active = true;
        store.workerLease.standbyLeave(me.workerId);
        logger.info("active worker", {
          worker_id: me.workerId,
          pid: me.pid,
          ...(result.previous
            ? { took_over_from: { pid: result.previous.pid, hostname: result.previous.hostname } }
            : {}),
        });
        try {
          options.onActive?.();
        } catch (err) {
          // Holding the lease without running jobs would lock standbys out while nothing runs: let go, retry.
          active = false;
          store.workerLease.release(me.workerId);
          logger.error("could not start as the active worker; released the lease, retrying", {
            error: (err as Error).stack ?? String(err),
          });
        }
      } else {
        store.workerLease.standbyBeat(me);
      }
      if (!result.acquired && !standbyLogged) {
        standbyLogged = true;
        const h = result.holder;
        logger.warn(
          `another worker is active on this database (pid ${h.pid} on ${h.hostname}); this worker waits as a standby and will not run jobs`,
          { worker_id: me.workerId, active_pid: h.pid, active_hostname: h.hostname },
        );
      }
    } catch (err) {
      // A busy or briefly unavailable database must not kill the worker; the next beat retries.
      logger.warn("worker heartbeat failed", { error: (err as Error).message });
    }
  }

  function schedule(): void {
    timer = setTimeout(() => {
      runOnce();
      schedule();
    }, options.heartbeatMs);
  }

  return {
    identity: me,
    isActive: () => active,
    start(): void {
      runOnce();
      schedule();
    },
    runOnce,
    /** Stops beating and hands the lease back so a standby can take over at once. */
    stop(): void {
      if (timer) clearTimeout(timer);
      timer = undefined;
      try {
        store.workerLease.standbyLeave(me.workerId);
      } catch {
        // The next active worker's sweep removes a stale row.
      }
      if (active) {
        try {
          store.workerLease.release(me.workerId);
        } catch (err) {
          logger.warn("could not release the worker lease", { error: (err as Error).message });
        }
        active = false;
      }
    },
  };
}

export type Leadership = ReturnType<typeof createLeadership>;
