import { pickNext, type QueuedJobRef } from "../drain-policy.js";
import { type LoadKey, sameLoad } from "../load-key.js";
import { normalizeModelName } from "../model-name.js";
import type { Db } from "./database.js";
import type { JobRecord } from "./jobs.js";
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
  /** The worker model the target holds now, with its runner options (null when none). */
  resident: LoadKey | null;
  starvationMs: number;
  now: number;
}

/**
 * The drain-by-model claim: in one IMMEDIATE transaction, checks that the caller still holds the worker
 * lease (closing the window where a stalled worker resumes after a standby took over, ADR 0004), reads the
 * two rows `pickNext` can choose between (the oldest queued job, and the oldest queued job of the resident
 * load key, each one index lookup), and moves the chosen one to `loading`, counting an attempt.
 */
export function createClaimStore(db: Db, transitions: TransitionsStore, lease: LeaseCheck) {
  const oldest = db.prepare<[], QueuedJobRef>(OLDEST_QUEUED_SQL);
  const oldestForLoad = db.prepare<[string, string], QueuedJobRef>(OLDEST_QUEUED_FOR_MODEL_SQL);
  const claim = db.transaction((request: ClaimRequest): JobRecord | null => {
    if (!lease.holds(request.workerId)) return null;
    const first = oldest.get();
    if (!first) return null;
    const candidates = [first];
    // Queued models are stored normalized, so the index lookup needs the resident name in the same form.
    const resident =
      request.resident === null
        ? null
        : { model: normalizeModelName(request.resident.model), runnerOptions: request.resident.runnerOptions };
    if (resident !== null && !sameLoad(resident, first)) {
      const same = oldestForLoad.get(resident.model, resident.runnerOptions);
      if (same) candidates.push(same);
    }
    const chosen = pickNext(candidates, request.resident, request.now, request.starvationMs)!;
    return transitions
      .forWorker(request.workerId)
      .transition(chosen.id, "loading", { incrementAttempts: true, reason: "claimed" });
  });
  return {
    claimNext(request: ClaimRequest): JobRecord | null {
      return claim.immediate(request);
    },
  };
}

export type ClaimStore = ReturnType<typeof createClaimStore>;
