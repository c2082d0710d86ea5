import { encodeTime } from "ulid";
import { isTerminal, type JobState } from "../job-states.js";
import type { RelayEnd } from "../relay.js";
import type { Db } from "./database.js";

/** What a job asks the target for, named for Ollama's route: chat, generate, embed, or the legacy embeddings. */
export type JobKind = "chat" | "generate" | "embed" | "embeddings";
export type JobApi = "ollama" | "openai";
export type JobMode = "sync" | "async";

export interface WebhookTarget {
  url: string;
  secret?: string | undefined;
  events?: string[] | undefined;
}

export interface JobRecord {
  id: string;
  kind: JobKind;
  api: JobApi;
  mode: JobMode;
  model: string;
  state: JobState;
  request: Record<string, unknown>;
  metadata: Record<string, unknown> | null;
  webhook: WebhookTarget | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  attempts: number;
  maxAttempts: number;
  error: string | null;
  errorStatus: number | null;
  result: unknown;
  metrics: Record<string, number> | null;
  createdAt: number;
  queuedAt: number | null;
  loadingAt: number | null;
  workingAt: number | null;
  endedAt: number | null;
  cancelRequestedAt: number | null;
  updatedAt: number;
}

export interface JobRow {
  id: string;
  kind: JobKind;
  api: JobApi;
  mode: JobMode;
  model: string;
  state: JobState;
  request: string;
  metadata: string | null;
  webhook_url: string | null;
  webhook_secret: string | null;
  webhook_events: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  attempts: number;
  max_attempts: number;
  error: string | null;
  error_status: number | null;
  result: string | null;
  metrics: string | null;
  created_at: number;
  queued_at: number | null;
  loading_at: number | null;
  working_at: number | null;
  ended_at: number | null;
  cancel_requested_at: number | null;
  updated_at: number;
}

interface ListParams {
  state: string | null;
  model: string | null;
  before: string | null;
  limit: number;
}

const parse = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

export function jobFromRow(row: JobRow): JobRecord {
  return recordOf(row, JSON.parse(row.request) as Record<string, unknown>, parse(row.metadata));
}

/** The record of a row just inserted, with the request and metadata its JSON was made from (not parsed again). */
export function jobFromInsertedRow(
  row: JobRow,
  request: Record<string, unknown>,
  metadata: Record<string, unknown> | null,
): JobRecord {
  return recordOf(row, request, metadata);
}

function recordOf(row: JobRow, request: Record<string, unknown>, metadata: Record<string, unknown> | null): JobRecord {
  return {
    id: row.id,
    kind: row.kind,
    api: row.api,
    mode: row.mode,
    model: row.model,
    state: row.state,
    request,
    metadata,
    webhook: row.webhook_url
      ? {
          url: row.webhook_url,
          secret: row.webhook_secret ?? undefined,
          events: parse<string[]>(row.webhook_events) ?? undefined,
        }
      : null,
    idempotencyKey: row.idempotency_key,
    requestHash: row.request_hash,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    error: row.error,
    errorStatus: row.error_status,
    result: parse(row.result),
    metrics: parse(row.metrics),
    createdAt: row.created_at,
    queuedAt: row.queued_at,
    loadingAt: row.loading_at,
    workingAt: row.working_at,
    endedAt: row.ended_at,
    cancelRequestedAt: row.cancel_requested_at,
    updatedAt: row.updated_at,
  };
}

/** Read-side queries over jobs. State changes go through the transitions store, never through here. */
export function createJobsStore(db: Db) {
  const byId = db.prepare<[string], JobRow>("SELECT * FROM jobs WHERE id = ?");
  const byIdempotencyKey = db.prepare<[string], JobRow>("SELECT * FROM jobs WHERE idempotency_key = ?");
  // Narrow reads for the checks that run on every wake-up or poll while a job runs or is followed: they
  // must not read and parse the request (which may hold megabytes of prompt and images).
  const stateOf = db.prepare<[string], { state: JobState }>("SELECT state FROM jobs WHERE id = ?");
  const endingOf = db.prepare<[string], { state: JobState; error: string | null; error_status: number | null }>(
    "SELECT state, error, error_status FROM jobs WHERE id = ?",
  );
  const queuedTotal = db.prepare<[], { count: number }>(
    "SELECT COUNT(*) AS count FROM jobs INDEXED BY jobs_queued_by_model WHERE state = 'queued'",
  );
  const cancelFlag = db.prepare<[string], { cancel_requested_at: number | null }>(
    "SELECT cancel_requested_at FROM jobs WHERE id = ?",
  );
  const queuedByModel = db.prepare<[], { model: string; count: number; oldest_created_at: number }>(
    `SELECT model, COUNT(*) AS count, MIN(created_at) AS oldest_created_at
       FROM jobs WHERE state = 'queued' GROUP BY model ORDER BY model`,
  );
  const running = db.prepare<[], { model: string; state: JobState; count: number }>(
    `SELECT model, state, COUNT(*) AS count FROM jobs INDEXED BY jobs_by_state
      WHERE state IN ('loading', 'working') GROUP BY model, state`,
  );
  // ULIDs start with their creation time, so "created since" is a range of the primary key.
  const createdSince = db.prepare<[string], { state: JobState; count: number }>(
    "SELECT state, COUNT(*) AS count FROM jobs WHERE id >= ? GROUP BY state",
  );
  const oldestQueued = db.prepare<[], { created_at: number }>(
    "SELECT created_at FROM jobs INDEXED BY jobs_by_state WHERE state = 'queued' ORDER BY id LIMIT 1",
  );
  // Everything but the request, which the views never show and which may be megabytes.
  const viewColumns = `id, kind, api, mode, model, state, '{}' AS request, metadata, webhook_url, webhook_secret,
    webhook_events, idempotency_key, request_hash, attempts, max_attempts, error, error_status, result, metrics,
    created_at, queued_at, loading_at, working_at, ended_at, cancel_requested_at, updated_at`;
  const forView = db.prepare<[string], JobRow>(`SELECT ${viewColumns} FROM jobs WHERE id = ?`);
  const transitionsAfter = db.prepare<
    [number, number],
    { id: number; job_id: string; from_state: JobState | null; to_state: JobState; reason: string | null; at: number }
  >("SELECT id, job_id, from_state, to_state, reason, at FROM job_transitions WHERE id > ? ORDER BY id LIMIT ?");
  const lastTransition = db.prepare<[], { id: number }>("SELECT COALESCE(MAX(id), 0) AS id FROM job_transitions");
  const anyQueued = db.prepare<[], { queued: number }>(
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued') AS queued",
  );
  // One statement per filter combination, so each uses its index: (state, id), (model, id) or the key.
  const BEFORE = "COALESCE(@before, '~')";
  const pages = {
    all: db.prepare<ListParams, JobRow>(`SELECT * FROM jobs WHERE id < ${BEFORE} ORDER BY id DESC LIMIT @limit`),
    state: db.prepare<ListParams, JobRow>(
      `SELECT * FROM jobs WHERE state = @state AND id < ${BEFORE} ORDER BY id DESC LIMIT @limit`,
    ),
    model: db.prepare<ListParams, JobRow>(
      `SELECT * FROM jobs WHERE model = @model AND id < ${BEFORE} ORDER BY id DESC LIMIT @limit`,
    ),
    both: db.prepare<ListParams, JobRow>(
      `SELECT * FROM jobs INDEXED BY jobs_by_state WHERE state = @state AND model = @model AND id < ${BEFORE}
       ORDER BY id DESC LIMIT @limit`,
    ),
  };
  return {
    get(id: string): JobRecord | null {
      const row = byId.get(id);
      return row ? jobFromRow(row) : null;
    },
    /** The job's state alone (null when it does not exist). */
    state(id: string): JobState | null {
      return stateOf.get(id)?.state ?? null;
    },
    /** How the job ended, as a relay's `#end` would say it; null while it has not ended (or is gone). */
    ending(id: string): RelayEnd | null {
      const row = endingOf.get(id);
      if (!row || !isTerminal(row.state)) return null;
      return {
        state: row.state as RelayEnd["state"],
        ...(row.error_status !== null ? { status: row.error_status } : {}),
        ...(row.error !== null ? { error: row.error } : {}),
      };
    },
    /** How many jobs are queued (a count over the queued-only index). */
    queuedCount(): number {
      return queuedTotal.get()?.count ?? 0;
    },
    /** Whether a caller asked to cancel the job while it runs. */
    cancelRequested(id: string): boolean {
      return cancelFlag.get(id)?.cancel_requested_at != null;
    },
    getByIdempotencyKey(key: string): JobRecord | null {
      const row = byIdempotencyKey.get(key);
      return row ? jobFromRow(row) : null;
    },
    /** Newest first; `before` is the id of the last job of the previous page. */
    list(filter: {
      state?: JobState | undefined;
      model?: string | undefined;
      before?: string | undefined;
      limit: number;
    }) {
      const params: ListParams = {
        state: filter.state ?? null,
        model: filter.model ?? null,
        before: filter.before ?? null,
        limit: filter.limit,
      };
      const statement = filter.state
        ? filter.model
          ? pages.both
          : pages.state
        : filter.model
          ? pages.model
          : pages.all;
      return statement.all(params).map(jobFromRow);
    },
    /** Whether any job waits in the queue: one index seek, whatever the queue's size. */
    hasQueuedJobs(): boolean {
      return anyQueued.get()!.queued === 1;
    },
    queueDepthByModel() {
      return queuedByModel.all();
    },
    /** Loading and working jobs by model (a handful at most: one worker runs one job). */
    runningByModel() {
      return running.all();
    },
    /** Jobs created at or after `since` (ms), counted by their state now. */
    countsCreatedSince(since: number): Record<JobState, number> {
      const counts = { queued: 0, loading: 0, working: 0, done: 0, failed: 0, canceled: 0 };
      for (const row of createdSince.all(encodeTime(since, 10))) counts[row.state] = row.count;
      return counts;
    },
    oldestQueuedAt(): number | null {
      return oldestQueued.get()?.created_at ?? null;
    },
    /** The job without its request, for views (events, status): a megabyte prompt is never parsed for them. */
    getForView(id: string): JobRecord | null {
      const row = forView.get(id);
      return row ? jobFromRow(row) : null;
    },
    /** Recorded transitions after the one with this id, oldest first (the live event stream's tail). */
    transitionsAfter(id: number, limit = 500) {
      return transitionsAfter.all(id, limit);
    },
    lastTransitionId(): number {
      return lastTransition.get()?.id ?? 0;
    },
  };
}

export type JobsStore = ReturnType<typeof createJobsStore>;
