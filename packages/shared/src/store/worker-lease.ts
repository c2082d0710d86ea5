import { type ResidentKeys, residentList } from "../load-key.js";
import type { Db } from "./database.js";

export interface LeaseHolder {
  workerId: string;
  pid: number;
  hostname: string;
  acquiredAt: number;
  heartbeatAt: number;
  currentJobId: string | null;
  /**
   * The worker models the target holds, with their runner options (the drain's resident load keys), most
   * recently used first: one key, or null, unless the target has more than two model slots.
   */
  resident: ResidentKeys;
  /** How many worker models it keeps resident at most: 1 on a two-slot target (the embedder has the other). */
  workerSlots: number;
}

export interface LeaseClaimant {
  workerId: string;
  pid: number;
  hostname: string;
}

export type AcquireResult = { acquired: true; previous: LeaseHolder | null } | { acquired: false; holder: LeaseHolder };

interface LeaseRow {
  worker_id: string;
  pid: number;
  hostname: string;
  acquired_at: number;
  heartbeat_at: number;
  current_job_id: string | null;
  resident_model: string | null;
  resident_runner_options: string | null;
  resident_others: string | null;
  worker_slots: number | null;
}

const toHolder = (r: LeaseRow): LeaseHolder => ({
  workerId: r.worker_id,
  pid: r.pid,
  hostname: r.hostname,
  acquiredAt: r.acquired_at,
  heartbeatAt: r.heartbeat_at,
  currentJobId: r.current_job_id,
  resident: residentOf(r),
  workerSlots: r.worker_slots ?? 1,
});

function residentOf(r: LeaseRow): ResidentKeys {
  if (r.resident_model === null) return null;
  const first = { model: r.resident_model, runnerOptions: r.resident_runner_options ?? "" };
  if (r.resident_others === null) return first;
  const others = (JSON.parse(r.resident_others) as Array<[string, string]>).map(([model, runnerOptions]) => ({
    model,
    runnerOptions,
  }));
  return [first, ...others];
}

/** A worker tried to move a job after another worker took the lease over; nothing was written. */
export class LeaseLostError extends Error {
  constructor(
    readonly workerId: string,
    readonly jobId: string | null,
  ) {
    super(
      `worker ${workerId} no longer holds the worker lease; ${jobId ? `job ${jobId} left as it is` : "nothing claimed"}`,
    );
    this.name = "LeaseLostError";
  }
}

/**
 * The one lease check. Every move a worker makes (claim, working, done, failed, canceled, requeue, and
 * recovery's moves) runs it inside the move's own transaction, so a worker that stalled past the stale
 * bound while a standby took over cannot record anything about a job the new worker now owns.
 */
export function createLeaseCheck(db: Db) {
  const holdsLease = db.prepare<[string], { ok: number }>(
    "SELECT 1 AS ok FROM worker_lease WHERE id = 1 AND worker_id = ?",
  );
  return {
    holds(workerId: string): boolean {
      return holdsLease.get(workerId) !== undefined;
    },
    /** Throws LeaseLostError unless `workerId` holds the lease; call inside the write's transaction. */
    assertHeld(workerId: string, jobId: string | null): void {
      if (holdsLease.get(workerId) === undefined) throw new LeaseLostError(workerId, jobId);
    },
  };
}

export type LeaseCheck = ReturnType<typeof createLeaseCheck>;

/** Whether a process id on this host is alive; `kill(pid, 0)` sends nothing, it only checks. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The one-row lease that makes a single worker active per database. The holder renews it with
 * each heartbeat; anyone else may take it only when it is stale, or when its holder is provably dead (a
 * process on this same host that no longer exists, or our own pid left over from a previous life of this
 * container), so a restarted worker does not have to wait out the stale period.
 */
export function createWorkerLeaseStore(
  db: Db,
  options: { staleMs: number; now?: () => number; isAlive?: (pid: number) => boolean },
) {
  const now = options.now ?? Date.now;
  const isAlive = options.isAlive ?? isProcessAlive;
  const select = db.prepare<[], LeaseRow>("SELECT * FROM worker_lease WHERE id = 1");
  const upsert = db.prepare(
    `INSERT INTO worker_lease (id, worker_id, pid, hostname, acquired_at, heartbeat_at, current_job_id)
     VALUES (1, @worker_id, @pid, @hostname, @now, @now, NULL)
     ON CONFLICT (id) DO UPDATE SET worker_id = excluded.worker_id, pid = excluded.pid,
       hostname = excluded.hostname, acquired_at = excluded.acquired_at,
       heartbeat_at = excluded.heartbeat_at, current_job_id = NULL, resident_model = NULL,
       resident_runner_options = NULL, resident_others = NULL`,
  );
  const beat = db.prepare(
    `UPDATE worker_lease SET heartbeat_at = ?, current_job_id = ?, resident_model = ?, resident_runner_options = ?,
       resident_others = ?, worker_slots = ? WHERE id = 1 AND worker_id = ?`,
  );
  const release = db.prepare("DELETE FROM worker_lease WHERE id = 1 AND worker_id = ?");
  const standbyBeat = db.prepare(
    `INSERT INTO worker_standbys (worker_id, pid, hostname, heartbeat_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
  );
  const standbyLeave = db.prepare("DELETE FROM worker_standbys WHERE worker_id = ? OR heartbeat_at < ?");
  const freshStandbys = db.prepare<
    [number],
    { worker_id: string; pid: number; hostname: string; heartbeat_at: number }
  >("SELECT * FROM worker_standbys WHERE heartbeat_at >= ? ORDER BY worker_id");

  const acquire = db.transaction((me: LeaseClaimant): AcquireResult => {
    const row = select.get();
    const at = now();
    if (row && row.worker_id !== me.workerId) {
      const stale = at - row.heartbeat_at > options.staleMs;
      const sameHost = row.hostname === me.hostname;
      const deadHere = sameHost && (row.pid === me.pid || !isAlive(row.pid));
      if (!stale && !deadHere) return { acquired: false, holder: toHolder(row) };
    }
    upsert.run({ worker_id: me.workerId, pid: me.pid, hostname: me.hostname, now: at });
    return { acquired: true, previous: row && row.worker_id !== me.workerId ? toHolder(row) : null };
  });

  return {
    /** Takes the lease if it is free, ours, stale or held by a dead process. */
    tryAcquire(me: LeaseClaimant): AcquireResult {
      return acquire.immediate(me);
    },
    /** Renews our lease; false means we lost it (another worker took over while we stalled). */
    heartbeat(
      workerId: string,
      currentJobId: string | null = null,
      resident: ResidentKeys = null,
      workerSlots = 1,
    ): boolean {
      const [first, ...rest] = residentList(resident);
      const others = rest.length > 0 ? JSON.stringify(rest.map((k) => [k.model, k.runnerOptions])) : null;
      const changes = beat.run(
        now(),
        currentJobId,
        first?.model ?? null,
        first?.runnerOptions ?? null,
        others,
        workerSlots,
        workerId,
      );
      return changes.changes === 1;
    },
    release(workerId: string): void {
      release.run(workerId);
    },
    holder(): LeaseHolder | null {
      const row = select.get();
      return row ? toHolder(row) : null;
    },
    /** A standby says it exists (each of its beats), for the status route. */
    standbyBeat(me: LeaseClaimant): void {
      standbyBeat.run(me.workerId, me.pid, me.hostname, now());
    },
    /** A standby became active or stopped; long-silent standbys are swept with it. */
    standbyLeave(workerId: string): void {
      standbyLeave.run(workerId, now() - options.staleMs);
    },
    /** Standby workers whose last beat is fresh. */
    standbys(): Array<{ workerId: string; pid: number; hostname: string; heartbeatAt: number }> {
      return freshStandbys.all(now() - options.staleMs).map((r) => ({
        workerId: r.worker_id,
        pid: r.pid,
        hostname: r.hostname,
        heartbeatAt: r.heartbeat_at,
      }));
    },
    isFresh(holder: LeaseHolder | null): boolean {
      return holder !== null && now() - holder.heartbeatAt <= options.staleMs;
    },
  };
}

export type WorkerLeaseStore = ReturnType<typeof createWorkerLeaseStore>;
