import { monotonicFactory } from "ulid";
import { assertTransition, eventForState, isTerminal, type JobState } from "../job-states.js";
import { toJobView } from "../job-view.js";
import { drainKeyOf, loadKeyOf } from "../load-key.js";
import { normalizeModelName } from "../model-name.js";
import { type ArtifactRecord, type ArtifactsStore, createArtifactsStore } from "./artifacts.js";
import type { Db } from "./database.js";
import {
  type JobApi,
  type JobKind,
  type JobMode,
  type JobRecord,
  type JobRow,
  jobFromInsertedRow,
  jobFromRow,
  type WebhookTarget,
} from "./jobs.js";
import { createMetricsStore, type MetricsStore } from "./metrics.js";
import { createLeaseCheck, type LeaseCheck } from "./worker-lease.js";

export interface NewJob {
  kind: JobKind;
  api: JobApi;
  mode: JobMode;
  model: string;
  request: Record<string, unknown>;
  metadata?: Record<string, unknown> | null;
  webhook?: WebhookTarget | null;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  maxAttempts?: number;
}

/** Fields a transition may set alongside the state. */
export interface TransitionPatch {
  error?: string | null;
  errorStatus?: number | null;
  result?: unknown;
  metrics?: Record<string, number> | null;
  /** Count this transition as the start of a new attempt (set when the worker claims the job). */
  incrementAttempts?: boolean;
  /** Give the attempt back: the target was unreachable before it answered, so nothing was tried. */
  refundAttempt?: boolean;
  /**
   * Artifacts to index with the move, in its transaction (before its event is written, so a terminal
   * event names them): a worker that lost the lease indexes nothing for a job that is no longer its own.
   */
  artifacts?: ArtifactRecord[];
  reason?: string;
}

type MoveFacts = Pick<JobRow, "state" | "model" | "queued_at" | "loading_at" | "working_at" | "cancel_requested_at">;

const STATE_TIMESTAMP: Record<JobState, string> = {
  queued: "queued_at",
  loading: "loading_at",
  working: "working_at",
  done: "ended_at",
  failed: "ended_at",
  canceled: "ended_at",
};

/**
 * Every write that creates a job or moves its state. Each one, in a single transaction: checks the move
 * with the state machine, updates the job row with the state's timestamp, appends the history row and,
 * when the job has a webhook that wants the event, the outbox row (no recorded transition or
 * pending webhook can be lost to a crash between the two).
 */
export interface TransitionsOptions {
  now?: () => number;
  defaultMaxAttempts?: number;
  /** Where terminal events find the job's artifacts (made from `db` when not given). */
  artifacts?: ArtifactsStore;
  /** Called after each committed transition (creation included, with `from` null): the one log line per move. */
  onTransition?: (job: JobRecord, from: JobState | null, reason: string | undefined) => void;
  /** The worker lease check every worker move runs (made from `db` when not given). */
  lease?: LeaseCheck;
  /** Where each move records its durations and counts, in the move's transaction (made from `db` when not given). */
  metrics?: MetricsStore;
  /**
   * Whether the drain groups jobs by runner options as well as model (true when not given); false stores ""
   * as every job's runner options, so they drain by model alone.
   */
  drainByRunnerOptions?: boolean;
}

export function createTransitionsStore(db: Db, options: TransitionsOptions = {}) {
  const now = options.now ?? Date.now;
  const drainByRunnerOptions = options.drainByRunnerOptions ?? true;
  const newId = monotonicFactory();
  const artifacts = options.artifacts ?? createArtifactsStore(db);
  const insertJob = db.prepare(
    `INSERT INTO jobs (id, kind, api, mode, model, runner_options, state, request, metadata, webhook_url,
       webhook_secret, webhook_events, idempotency_key, request_hash, max_attempts, created_at, queued_at, updated_at)
     VALUES (@id, @kind, @api, @mode, @model, @runner_options, 'queued', @request, @metadata, @webhook_url,
       @webhook_secret, @webhook_events, @idempotency_key, @request_hash, @max_attempts, @now, @now, @now)`,
  );
  const selectJob = db.prepare<[string], JobRow>("SELECT * FROM jobs WHERE id = ?");
  // What a move checks and measures, without the request (which may hold megabytes of prompt and images):
  // the whole row is read once, after the update, for the record the move returns.
  const selectMoveFacts = db.prepare<[string], MoveFacts>(
    "SELECT state, model, queued_at, loading_at, working_at, cancel_requested_at FROM jobs WHERE id = ?",
  );
  const insertHistory = db.prepare(
    "INSERT INTO job_transitions (job_id, from_state, to_state, attempt, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const selectHistory = db.prepare<
    [string],
    { from_state: JobState | null; to_state: JobState; attempt: number; reason: string | null; at: number }
  >("SELECT from_state, to_state, attempt, reason, at FROM job_transitions WHERE job_id = ? ORDER BY id");
  const insertOutbox = db.prepare(
    `INSERT INTO webhook_outbox (event_id, job_id, event_type, payload, url, next_attempt_at, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const updateStatements = new Map<JobState, ReturnType<Db["prepare"]>>();
  for (const state of Object.keys(STATE_TIMESTAMP) as JobState[]) {
    updateStatements.set(
      state,
      db.prepare(
        `UPDATE jobs SET state = @to, ${STATE_TIMESTAMP[state]} = @now, updated_at = @now,
           attempts = MAX(0, attempts + @inc),
           error = CASE WHEN @set_error THEN @error ELSE error END,
           error_status = CASE WHEN @set_error THEN @error_status ELSE error_status END,
           result = CASE WHEN @set_result THEN @result ELSE result END,
           metrics = CASE WHEN @set_metrics THEN @metrics ELSE metrics END
         WHERE id = @id AND state = @from`,
      ),
    );
  }

  function enqueueWebhook(job: JobRecord, at: number): void {
    if (!job.webhook) return;
    const type = eventForState(job.state);
    if (job.webhook.events && !job.webhook.events.includes(type)) return;
    const eventId = `msg_${newId(at)}`;
    // The payload is frozen at the moment of the transition so retries deliver what was true then.
    // Terminal events carry the result inline or the artifact URLs.
    const data = toJobView(job, isTerminal(job.state) ? { artifacts: artifacts.forJob(job.id) } : {});
    const payload = JSON.stringify({ type, timestamp: new Date(at).toISOString(), data });
    insertOutbox.run(eventId, job.id, type, payload, job.webhook.url, at, at);
  }

  /** Inserts one job with its creating history row and job.queued outbox row; the caller holds the transaction. */
  function insertNewJob(input: NewJob): JobRecord {
    const at = now();
    const id = newId(at);
    const model = normalizeModelName(input.model);
    // The row is also the insert's parameters: the drain groups jobs by load key (ADR 0025), so the runner
    // options are stored beside the model.
    const row: JobRow & { runner_options: string; now: number } = {
      id,
      kind: input.kind,
      api: input.api,
      mode: input.mode,
      // Normalized so "llama3.2" and "llama3.2:latest" queue and drain as the one model they are.
      model,
      runner_options: drainKeyOf(loadKeyOf(model, input.api, input.request), drainByRunnerOptions).runnerOptions,
      now: at,
      state: "queued",
      request: JSON.stringify(input.request),
      metadata: input.metadata ? JSON.stringify(input.metadata) : null,
      webhook_url: input.webhook?.url ?? null,
      webhook_secret: input.webhook?.secret ?? null,
      webhook_events: input.webhook?.events ? JSON.stringify(input.webhook.events) : null,
      idempotency_key: input.idempotencyKey ?? null,
      request_hash: input.requestHash ?? null,
      attempts: 0,
      max_attempts: input.maxAttempts ?? options.defaultMaxAttempts ?? 3,
      error: null,
      error_status: null,
      result: null,
      metrics: null,
      created_at: at,
      queued_at: at,
      loading_at: null,
      working_at: null,
      ended_at: null,
      cancel_requested_at: null,
      updated_at: at,
    };
    insertJob.run(row);
    insertHistory.run(id, null, "queued", 0, null, at);
    // Built from what was inserted rather than read back, and with the request and metadata the caller
    // gave rather than parsed again from their JSON: this is the hot path of POST /jobs, and each copy made
    // here was garbage that outlived the young generation (the commit holds a whole batch).
    const job = jobFromInsertedRow(row, input.request, input.metadata ?? null);
    enqueueWebhook(job, at);
    return job;
  }

  const create = db.transaction(insertNewJob);
  const createMany = db.transaction((inputs: NewJob[]) => inputs.map(insertNewJob));

  const markCancel = db.prepare(
    "UPDATE jobs SET cancel_requested_at = ?, updated_at = ? WHERE id = ? AND cancel_requested_at IS NULL",
  );
  const selectActive = db.prepare<[], JobRow>("SELECT * FROM jobs WHERE state IN ('loading', 'working') ORDER BY id");

  const lease = options.lease ?? createLeaseCheck(db);
  const metrics = options.metrics ?? createMetricsStore(db);

  /**
   * What a move says about time spent: the wait (queued until claimed), the load (claimed until the target
   * answered) and the run (answering until ended), by model; jobs ended by state; tokens generated.
   */
  function recordMove(row: MoveFacts, to: JobState, at: number, patch: TransitionPatch): void {
    const model = { model: row.model };
    const seconds = (since: number | null) => (since === null ? null : Math.max(0, at - since) / 1000);
    if (row.state === "queued" && to === "loading") {
      const wait = seconds(row.queued_at);
      if (wait !== null) metrics.observe("foreman_job_wait_seconds", model, wait);
    } else if (row.state === "loading" && to === "working") {
      const load = seconds(row.loading_at);
      if (load !== null) metrics.observe("foreman_job_load_seconds", model, load);
    }
    if (!isTerminal(to)) return;
    if (row.state === "working") {
      const run = seconds(row.working_at);
      if (run !== null) metrics.observe("foreman_job_run_seconds", model, run);
    }
    metrics.increment("foreman_jobs_finished_total", { ...model, state: to });
    const evalCount = patch.metrics?.eval_count;
    const evalNs = patch.metrics?.eval_duration;
    if (to === "done" && evalCount && evalNs) {
      metrics.increment("foreman_generated_tokens_total", model, evalCount);
      metrics.increment("foreman_generation_seconds_total", model, evalNs / 1e9);
      metrics.set("foreman_tokens_per_second", model, evalCount / (evalNs / 1e9));
    }
  }

  type Mover = string | null;
  const move = db.transaction(
    (by: Mover, id: string, to: JobState, patch: TransitionPatch): { job: JobRecord; from: JobState } => {
      if (by !== null) lease.assertHeld(by, id);
      const row = selectMoveFacts.get(id);
      if (!row) throw new Error(`job ${id} does not exist`);
      assertTransition(row.state, to, id);
      const at = now();
      const res = updateStatements.get(to)!.run({
        id,
        from: row.state,
        to,
        now: at,
        inc: patch.incrementAttempts ? 1 : patch.refundAttempt ? -1 : 0,
        set_error: patch.error !== undefined ? 1 : 0,
        error: patch.error ?? null,
        error_status: patch.errorStatus ?? null,
        set_result: patch.result !== undefined ? 1 : 0,
        result: patch.result === undefined ? null : JSON.stringify(patch.result),
        set_metrics: patch.metrics !== undefined ? 1 : 0,
        metrics: patch.metrics ? JSON.stringify(patch.metrics) : null,
      });
      // Inside one IMMEDIATE transaction nobody else can have moved it, but stay defensive.
      if (res.changes !== 1) throw new Error(`job ${id} changed state concurrently`);
      const job = jobFromRow(selectJob.get(id)!);
      for (const record of patch.artifacts ?? []) artifacts.record(record);
      insertHistory.run(id, row.state, to, job.attempts, patch.reason ?? null, at);
      recordMove(row, to, at, patch);
      enqueueWebhook(job, at);
      return { job, from: row.state };
    },
  );

  const requeueTx = db.transaction((by: Mover, id: string, patch: TransitionPatch) => {
    const row = selectMoveFacts.get(id);
    if (row?.cancel_requested_at != null) return move(by, id, "canceled", { reason: "canceled while running" });
    return move(by, id, "queued", patch);
  });

  const cancel = db.transaction((id: string): CancelOutcome => {
    const row = selectJob.get(id);
    if (!row) return { outcome: "missing" };
    if (row.state === "queued") {
      return { outcome: "canceled", job: move(null, id, "canceled", { reason: "canceled before it started" }).job };
    }
    if (row.state === "loading" || row.state === "working") {
      const at = now();
      markCancel.run(at, at, id);
      return { outcome: "requested", job: jobFromRow(selectJob.get(id)!) };
    }
    return { outcome: "ended", job: jobFromRow(row) };
  });

  function commit(by: Mover, id: string, to: JobState, patch: TransitionPatch): JobRecord {
    const { job, from } = move.immediate(by, id, to, patch);
    options.onTransition?.(job, from, patch.reason);
    return job;
  }

  /**
   * Puts a job back in the queue, unless its cancel was requested while it ran: then it is canceled, so a
   * cancel answered "requested" is never lost to a requeue (target unreachable, shutdown, recovery).
   */
  function commitRequeue(by: Mover, id: string, patch: TransitionPatch): JobRecord {
    const { job, from } = requeueTx.immediate(by, id, patch);
    options.onTransition?.(job, from, job.state === "canceled" ? "canceled while running" : patch.reason);
    return job;
  }

  return {
    /** Commits a new queued job (with its creation history row and job.queued outbox row). */
    createJob(input: NewJob): JobRecord {
      const job = create.immediate(input);
      options.onTransition?.(job, null, undefined);
      return job;
    },
    /**
     * Commits several new jobs in one transaction (group commit: one WAL write for a burst of POSTs). If any
     * insert fails the whole batch rolls back and the caller retries them one by one.
     */
    createJobs(inputs: NewJob[]): JobRecord[] {
      const jobs = createMany.immediate(inputs);
      for (const job of jobs) options.onTransition?.(job, null, undefined);
      return jobs;
    },
    /**
     * Moves a job to `to`; throws IllegalTransitionError when the state machine forbids it. Unchecked by the
     * lease: for tests and tools. A worker moves jobs only through `forWorker`.
     */
    transition(id: string, to: JobState, patch: TransitionPatch = {}): JobRecord {
      return commit(null, id, to, patch);
    },
    /** Puts a job back in the queue (or cancels it when a cancel was requested meanwhile); unchecked. */
    requeue(id: string, patch: TransitionPatch = {}): JobRecord {
      return commitRequeue(null, id, patch);
    },
    /**
     * The moves a worker may make, each checked against the worker lease in its own transaction (LeaseLostError
     * when `workerId` no longer holds it), so a worker that stalled past the stale bound cannot record the
     * outcome of a job another worker recovered.
     */
    forWorker(workerId: string): WorkerTransitions {
      return {
        workerId,
        assertLease: (jobId) => lease.assertHeld(workerId, jobId),
        transition: (id, to, patch = {}) => commit(workerId, id, to, patch),
        requeue: (id, patch = {}) => commitRequeue(workerId, id, patch),
      };
    },
    /**
     * Cancels a job: a queued one at once (it never starts); a running one is marked, and the worker, which
     * owns running jobs, aborts the target request and records the cancel.
     */
    requestCancel(id: string): CancelOutcome {
      const result = cancel.immediate(id);
      if (result.outcome === "canceled") options.onTransition?.(result.job, "queued", "canceled before it started");
      return result;
    },
    /** Jobs a worker was running when it stopped without finishing them (found at the next worker's start). */
    activeJobs(): JobRecord[] {
      return selectActive.all().map(jobFromRow);
    },
    history(id: string) {
      return selectHistory.all(id);
    },
  };
}

export type TransitionsStore = ReturnType<typeof createTransitionsStore>;

/** A worker's handle on job moves: every one is checked against the worker lease. */
export interface WorkerTransitions {
  readonly workerId: string;
  /** Throws LeaseLostError unless this worker still holds the lease (before work that writes files). */
  assertLease(jobId: string): void;
  transition(id: string, to: JobState, patch?: TransitionPatch): JobRecord;
  requeue(id: string, patch?: TransitionPatch): JobRecord;
}

export type CancelOutcome =
  | { outcome: "missing" }
  | { outcome: "canceled"; job: JobRecord }
  | { outcome: "requested"; job: JobRecord }
  | { outcome: "ended"; job: JobRecord };
