import { pickNext, type QueuedJobRef } from "../drain-policy.js";
import { type ResidentKeys, residentList, sameLoad } from "../load-key.js";
import { normalizeModelName } from "../model-name.js";
import type { Db } from "./database.js";
import type { JobRecord, JobsStore } from "./jobs.js";
import type { TransitionsStore } from "./transitions.js";
import type { LeaseCheck } from "./worker-lease.js";

/** The oldest queued job. Exported so a test can check its query plan. */
export const OLDEST_QUEUED_SQL =
  "SELECT id, model, runner_options AS runnerOptions, created_at AS createdAt FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1";

/**
 * The oldest queued job of one load key (model and runner options). Without the hint SQLite picks jobs_by_model and walks every job the
 * model ever had (measured: the claim slowed down with the number of finished jobs); the partial index holds
 * only queued jobs. Exported so a test can check its query plan.
 */
export const OLDEST_QUEUED_FOR_MODEL_SQL = `SELECT id, model, runner_options AS runnerOptions, created_at AS createdAt
      FROM jobs INDEXED BY jobs_queued_by_model
      WHERE state = 'queued' AND model = ? AND runner_options = ? ORDER BY id LIMIT 1`;

export interface ClaimRequest {
  workerId: string;
  /** The worker's load keys the target holds now, most recently used first (one, or null, on two slots). */
  resident: ResidentKeys;
  starvationMs: number;
  now: number;
}

/**
 * The drain-by-model claim. `pick` reads the rows `pickNext` can choose between (the oldest queued job, and
 * the oldest queued job of each resident load key, each one index lookup: two rows on a two-slot target)
 * and says which it chooses; `claimQueued` moves a chosen job to `loading`, counting an attempt, in one
 * IMMEDIATE transaction that checks the caller still holds the worker lease (closing the window where a
 * stalled worker resumes after a standby took over, ADR 0004) and that the job is still queued.
 *
 * The worker picks, sends the job's request to the target, and claims while the target works on it, so the
 * claim's transaction is not between the caller's request and the target's (ADR 0032); `claimNext` does
 * both at once, for tools and tests.
 */
export function createClaimStore(
  db: Db,
  jobs: Pick<JobsStore, "get" | "state">,
  transitions: TransitionsStore,
  lease: LeaseCheck,
) {
  const oldest = db.prepare<[], QueuedJobRef>(OLDEST_QUEUED_SQL);
  const oldestForLoad = db.prepare<[string, string], QueuedJobRef>(OLDEST_QUEUED_FOR_MODEL_SQL);

  function pick(request: ClaimRequest): QueuedJobRef | null {
    if (!lease.holds(request.workerId)) return null;
    const first = oldest.get();
    if (!first) return null;
    const candidates = [first];
    // Queued models are stored normalized, so the index lookup needs the resident name in the same form.
    const resident = residentList(request.resident).map((key) => ({
      model: normalizeModelName(key.model),
      runnerOptions: key.runnerOptions,
    }));
    // Most recently used first: the first resident key with a queued job is the one pickNext prefers.
    for (const key of resident) {
      if (sameLoad(key, first)) break;
      const same = oldestForLoad.get(key.model, key.runnerOptions);
      if (same) {
        candidates.push(same);
        break;
      }
    }
    return pickNext(candidates, resident, request.now, request.starvationMs)!;
  }

  const claimQueued = db.transaction((workerId: string, id: string): JobRecord | null => {
    if (!lease.holds(workerId) || jobs.state(id) !== "queued") return null;
    return transitions.forWorker(workerId).transition(id, "loading", { incrementAttempts: true, reason: "claimed" });
  });
  const claim = db.transaction((request: ClaimRequest): JobRecord | null => {
    const chosen = pick(request);
    return chosen ? claimQueued(request.workerId, chosen.id) : null;
  });
  return {
    /** The queued job the drain would run next, as it is now (still queued: nothing is written). */
    peekNext(request: ClaimRequest): JobRecord | null {
      const chosen = pick(request);
      return chosen ? jobs.get(chosen.id) : null;
    },
    /** Claims a job picked earlier; null when it is no longer queued (canceled meanwhile) or the lease moved. */
    claimQueued(workerId: string, id: string): JobRecord | null {
      return claimQueued.immediate(workerId, id);
    },
    claimNext(request: ClaimRequest): JobRecord | null {
      return claim.immediate(request);
    },
  };
}

export type ClaimStore = ReturnType<typeof createClaimStore>;
