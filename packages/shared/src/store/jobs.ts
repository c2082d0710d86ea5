import type { JobState } from "../job-states.js";
import type { Db } from "./database.js";

export type JobKind = "chat" | "generate";
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
  return {
    id: row.id,
    kind: row.kind,
    api: row.api,
    mode: row.mode,
    model: row.model,
    state: row.state,
    request: JSON.parse(row.request) as Record<string, unknown>,
    metadata: parse(row.metadata),
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
  const queuedByModel = db.prepare<[], { model: string; count: number; oldest_created_at: number }>(
    `SELECT model, COUNT(*) AS count, MIN(created_at) AS oldest_created_at
       FROM jobs WHERE state = 'queued' GROUP BY model ORDER BY model`,
  );
  const anyQueued = db.prepare<[], { queued: number }>(
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued') AS queued",
  );
  const countsByState = db.prepare<[], { model: string; state: JobState; count: number }>(
    "SELECT model, state, COUNT(*) AS count FROM jobs GROUP BY model, state",
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
    countsByModelAndState() {
      return countsByState.all();
    },
  };
}

export type JobsStore = ReturnType<typeof createJobsStore>;
