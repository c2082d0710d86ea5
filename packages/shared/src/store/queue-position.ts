import { encodeTime, TIME_MAX } from "ulid";
import { type LoadKey, loadKeyText, type ResidentKeys, residentList } from "../load-key.js";
import { normalizeModelName } from "../model-name.js";
import type { Db } from "./database.js";

/** What the drain order depends on besides the queue itself (see `drainOrder` in drain-policy.ts). */
export interface DrainContext {
  /** The load keys the active worker holds now, most recently used first (null when none, or no worker). */
  resident: ResidentKeys;
  now: number;
  starvationMs: number;
  /** How many worker models the target holds at once (its model slots but the embedder's); 1 when not given. */
  workerSlots?: number;
}

/** A job to position: its load key is read from the queue, in the snapshot that counts. */
export interface QueuedJobKey {
  id: string;
}

/** Sorts after every ULID: an open upper bound for `id <= @upTo`. */
const END = "~";

/**
 * The smallest id whose time part is after `cutoff`: every id below it encodes a time at or before the
 * cutoff. A job's id is made from the same clock reading as its `created_at`, and the monotonic ULID factory
 * only ever moves an id's time forward (when the clock steps back), so an id's time is never earlier than
 * its `created_at`: every queued job below this id has waited the starvation bound, without looking.
 */
function firstIdAfter(cutoff: number): string {
  if (cutoff < 0) return "";
  return `${encodeTime(Math.min(Math.floor(cutoff) + 1, TIME_MAX))}${"0".repeat(16)}`;
}

/** Ids share a bucket of the queue's per-second counts (migration 12) when they share these first characters. */
const BUCKET_CHARS = 8;

/**
 * The queued jobs with `after < id <= upTo` ("" and END leave that side open), counted with the per-second
 * buckets: the whole buckets between the two ends are summed, one row per second of ids they span, and jobs
 * are counted one by one only in the ends' own buckets. So a count over most of a 100,000-job queue reads a
 * few hundred rows, not 100,000 index entries. `exactly` counts jobs in a range, `buckets` sums the buckets
 * strictly between two prefixes.
 */
function countInRange(
  after: string,
  upTo: string,
  exactly: (after: string, upTo: string) => number,
  buckets: (lo: string, hi: string) => number,
): number {
  if (upTo !== END && after >= upTo) return 0;
  const lo = after.slice(0, BUCKET_CHARS);
  const hi = upTo === END ? END : upTo.slice(0, BUCKET_CHARS);
  if (after !== "" && lo === hi) return exactly(after, upTo);
  // The ids of bucket `lo` after `after` all sort below `lo` + END, those of bucket `hi` up to `upTo` above `hi`.
  const first = after === "" ? 0 : exactly(after, `${lo}${END}`);
  const last = upTo === END ? 0 : exactly(hi, upTo);
  return first + buckets(lo, hi) + last;
}

/**
 * Queue positions under the drain-by-model order, counted in SQL instead of by loading the queue (a read of
 * 100,000 queued rows took 0.4 s per `GET /jobs/<id>`). `drainOrder` is the definition and a test checks
 * the two agree on random queues; the order, at a fixed `now`, is:
 *
 * 1. the starved prefix S: the queued jobs, oldest first, before the first one that has not waited
 *    `starvationMs` (call it b);
 * 2. then the rest, R, grouped by load key (model and runner options, ADR 0025): first the groups of the load
 *    keys that will be resident after S, most recently used first (`residentAfter`: the last starved job's
 *    key, then the keys of the other models S ends with, then the resident ones, up to `workerSlots`), then
 *    each other group in the order of its oldest job in R; within a group, oldest first.
 *
 * So a job in S stands at its rank in the queue, and a job in R at |S| + the sizes of the groups before its
 * own + its rank in its group. Every term is a seek or a range count on an index that covers it
 * (`jobs_by_state`: state, id, model, runner_options, created_at; `jobs_queued_by_model`), never a table row, and all reads
 * share one snapshot. SQLite keeps no subtree sizes, so a plain count steps through every index entry it
 * counts; a long range is summed from the per-second buckets instead (`countInRange`, ADR 0031), and only the
 * jobs in its two end seconds are stepped through. A page is positioned in the same pass: ranks are counted
 * between consecutive jobs, and each group sized once.
 */
export function createQueuePositionStore(db: Db) {
  const queuedLoadKey = db.prepare<[string], LoadKey>(
    "SELECT model, runner_options AS runnerOptions FROM jobs WHERE id = ? AND state = 'queued'",
  );
  // The first queued job, in queue order, that has not waited the starvation bound: the end of S. Starting
  // at `from` (firstIdAfter) skips the jobs known to be starved, so this is usually the first entry it reads.
  const firstUnstarved = db.prepare<{ from: string; upTo: string; cutoff: number }, { id: string }>(
    `SELECT id FROM jobs INDEXED BY jobs_by_state
      WHERE state = 'queued' AND id >= @from AND id <= @upTo AND created_at > @cutoff ORDER BY id LIMIT 1`,
  );
  const lastBefore = db.prepare<{ before: string }, { id: string } & LoadKey>(
    `SELECT id, model, runner_options AS runnerOptions FROM jobs INDEXED BY jobs_by_state
      WHERE state = 'queued' AND id < @before ORDER BY id DESC LIMIT 1`,
  );
  // The last starved job before `before` of a model not yet counted resident: walking S backwards, one per
  // model, steps over the jobs of the models already found, each S entry at most once over all the calls.
  const lastBeforeOfOtherModel = db.prepare<{ before: string; models: string }, { id: string } & LoadKey>(
    `SELECT id, model, runner_options AS runnerOptions FROM jobs INDEXED BY jobs_by_state
      WHERE state = 'queued' AND id < @before AND model NOT IN (SELECT value FROM json_each(@models))
      ORDER BY id DESC LIMIT 1`,
  );
  const countQueuedExactly = db.prepare<{ after: string; upTo: string }, { n: number }>(
    "SELECT COUNT(*) AS n FROM jobs INDEXED BY jobs_by_state WHERE state = 'queued' AND id > @after AND id <= @upTo",
  );
  const countQueuedOfLoadExactly = db.prepare<
    { model: string; runnerOptions: string; after: string; upTo: string },
    { n: number }
  >(
    `SELECT COUNT(*) AS n FROM jobs INDEXED BY jobs_queued_by_model
      WHERE state = 'queued' AND model = @model AND runner_options = @runnerOptions AND id > @after AND id <= @upTo`,
  );
  const sumBuckets = db.prepare<{ lo: string; hi: string }, { n: number }>(
    "SELECT COALESCE(SUM(n), 0) AS n FROM queue_buckets WHERE prefix > @lo AND prefix < @hi",
  );
  const sumLoadBuckets = db.prepare<{ model: string; runnerOptions: string; lo: string; hi: string }, { n: number }>(
    `SELECT COALESCE(SUM(n), 0) AS n FROM queue_load_buckets
      WHERE model = @model AND runner_options = @runnerOptions AND prefix > @lo AND prefix < @hi`,
  );
  const countQueued = (after: string, upTo: string) =>
    countInRange(
      after,
      upTo,
      (a, u) => countQueuedExactly.get({ after: a, upTo: u })!.n,
      (lo, hi) => sumBuckets.get({ lo, hi })!.n,
    );
  const countQueuedOfLoad = ({ model, runnerOptions }: LoadKey, after: string, upTo: string) =>
    countInRange(
      after,
      upTo,
      (a, u) => countQueuedOfLoadExactly.get({ model, runnerOptions, after: a, upTo: u })!.n,
      (lo, hi) => sumLoadBuckets.get({ model, runnerOptions, lo, hi })!.n,
    );
  // The oldest job after `after` whose load key has no group yet: it opens the next group. Every job it steps
  // over belongs to a group already placed, so the walks of successive calls never overlap. `placed` is a
  // JSON array of [model, runner options] pairs.
  const nextGroupHead = db.prepare<{ after: string; placed: string }, { id: string } & LoadKey>(
    `SELECT id, model, runner_options AS runnerOptions FROM jobs INDEXED BY jobs_by_state
      WHERE state = 'queued' AND id > @after
        AND (model, runner_options) NOT IN (SELECT value ->> 0, value ->> 1 FROM json_each(@placed))
      ORDER BY id LIMIT 1`,
  );

  const positions = db.transaction((jobs: readonly QueuedJobKey[], context: DrainContext) => {
    const out = new Map<string, number>();
    // Only jobs still queued in this snapshot have a position (one may have been claimed since it was read).
    const targets = [...new Set(jobs.map((j) => j.id))]
      .flatMap((id) => {
        const key = queuedLoadKey.get(id);
        return key ? [{ id, ...key }] : [];
      })
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    if (targets.length === 0) return out;
    const cutoff = context.now - context.starvationMs;
    const boundary = firstUnstarved.get({ from: firstIdAfter(cutoff), upTo: targets.at(-1)!.id, cutoff })?.id;

    // Jobs in S: their rank in the queue, counted between consecutive targets.
    let rank = 0;
    let after = "";
    const rest: Array<{ id: string } & LoadKey> = [];
    for (const job of targets) {
      if (boundary !== undefined && job.id >= boundary) {
        rest.push(job);
        continue;
      }
      rank += countQueued(after, job.id);
      after = job.id;
      out.set(job.id, rank);
    }
    if (rest.length === 0) return out;

    const lastStarved = lastBefore.get({ before: boundary! });
    const starvedCount = lastStarved ? rank + countQueued(after, lastStarved.id) : 0;
    const restAfter = lastStarved?.id ?? "";
    // Queued models are stored normalized, so the resident names are compared in the same form.
    const resident = residentList(context.resident).map((k) => ({ ...k, model: normalizeModelName(k.model) }));
    let current: LoadKey[] = resident;
    if (lastStarved) {
      const slots = context.workerSlots ?? 1;
      const endOfS = [lastStarved];
      while (endOfS.length < slots) {
        const models = JSON.stringify(endOfS.map((k) => k.model));
        const earlier = lastBeforeOfOtherModel.get({ before: endOfS.at(-1)!.id, models });
        if (!earlier) break;
        endOfS.push(earlier);
      }
      const seen = new Set(endOfS.map((k) => k.model));
      current = [...endOfS, ...resident.filter((k) => !seen.has(k.model))].slice(0, slots);
    }

    const byLoad = new Map<string, typeof rest>();
    for (const job of rest) {
      const key = loadKeyText(job);
      const group = byLoad.get(key);
      if (group) group.push(job);
      else byLoad.set(key, [job]);
    }
    let offset = starvedCount;
    const placed: Array<[string, string]> = [];
    const placeGroup = ({ model, runnerOptions }: LoadKey) => {
      const key = loadKeyText({ model, runnerOptions });
      let inGroup = 0;
      let groupAfter = restAfter;
      for (const job of byLoad.get(key) ?? []) {
        inGroup += countQueuedOfLoad({ model, runnerOptions }, groupAfter, job.id);
        groupAfter = job.id;
        out.set(job.id, offset + inGroup);
      }
      byLoad.delete(key);
      placed.push([model, runnerOptions]);
      if (byLoad.size > 0) offset += inGroup + countQueuedOfLoad({ model, runnerOptions }, groupAfter, END);
    };
    for (const key of current) placeGroup(key);
    let head = restAfter;
    while (byLoad.size > 0) {
      const next = nextGroupHead.get({ after: head, placed: JSON.stringify(placed) });
      if (!next) break;
      placeGroup(next);
      head = next.id;
    }
    return out;
  });

  return {
    /**
     * 1-based positions in the drain order of the given jobs that are queued (others are left out), in
     * one read snapshot; pass a whole page at once rather than calling once per job.
     */
    positions(jobs: readonly QueuedJobKey[], context: DrainContext): Map<string, number> {
      return positions(jobs, context);
    },
    positionOf(job: QueuedJobKey, context: DrainContext): number | undefined {
      return positions([job], context).get(job.id);
    },
  };
}

export type QueuePositionStore = ReturnType<typeof createQueuePositionStore>;
