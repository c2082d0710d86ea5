/**
 * Forward-only schema migrations. A migration is never edited once released: add a new one instead.
 * Versions are consecutive integers; `migrate` applies the missing ones in order.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial",
    sql: `
      CREATE TABLE jobs (
        id                  TEXT PRIMARY KEY,          -- ULID: sorts by creation time
        kind                TEXT NOT NULL CHECK (kind IN ('chat', 'generate')),
        api                 TEXT NOT NULL CHECK (api IN ('ollama', 'openai')),
        mode                TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
        model               TEXT NOT NULL,
        state               TEXT NOT NULL CHECK (state IN ('queued','loading','working','done','failed','canceled')),
        request             TEXT NOT NULL,             -- JSON body as the worker will send it to the target
        metadata            TEXT,                      -- caller's JSON, echoed back
        webhook_url         TEXT,
        webhook_secret      TEXT,
        webhook_events      TEXT,                      -- JSON array, NULL = every event
        idempotency_key     TEXT,
        request_hash        TEXT,
        attempts            INTEGER NOT NULL DEFAULT 0,
        max_attempts        INTEGER NOT NULL DEFAULT 3,
        error               TEXT,
        error_status        INTEGER,                   -- HTTP status to answer a sync caller with
        result              TEXT,                      -- JSON, inline when small
        metrics             TEXT,                      -- JSON: target load/prompt/eval durations and counts
        created_at          INTEGER NOT NULL,          -- epoch ms
        queued_at           INTEGER,
        loading_at          INTEGER,
        working_at          INTEGER,
        ended_at            INTEGER,
        cancel_requested_at INTEGER,
        updated_at          INTEGER NOT NULL
      );
      -- Drain-by-model claim: oldest queued job overall, and oldest queued job of the resident model.
      CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued';
      CREATE INDEX jobs_queued_by_model ON jobs (model, id) WHERE state = 'queued';
      -- Newest-first listing filtered by state or model (the primary key serves the unfiltered list).
      CREATE INDEX jobs_by_state ON jobs (state, id);
      CREATE INDEX jobs_by_model ON jobs (model, id);
      -- Retention prunes ended jobs by age.
      CREATE INDEX jobs_ended ON jobs (ended_at) WHERE ended_at IS NOT NULL;
      CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

      CREATE TABLE job_transitions (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        from_state TEXT,                               -- NULL for the creating transition
        to_state   TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        reason     TEXT,
        at         INTEGER NOT NULL
      );
      CREATE INDEX job_transitions_by_job ON job_transitions (job_id, id);

      CREATE TABLE webhook_outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- delivery order per job
        event_id        TEXT NOT NULL UNIQUE,               -- the webhook-id header: stable across retries
        job_id          TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        event_type      TEXT NOT NULL,
        payload         TEXT NOT NULL,
        url             TEXT NOT NULL,
        status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_status     INTEGER,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        delivered_at    INTEGER
      );
      CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
      CREATE INDEX webhook_outbox_by_job ON webhook_outbox (job_id, id);

      CREATE TABLE artifacts (
        job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        path         TEXT NOT NULL,                   -- relative to FOREMAN_DATA_DIR
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (job_id, name)
      );

      -- What the worker's target poller last saw; one row.
      CREATE TABLE target_status (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        reachable       INTEGER NOT NULL,
        version         TEXT,
        resident        TEXT NOT NULL DEFAULT '[]',   -- JSON: /api/ps models
        last_seen_at    INTEGER,
        last_checked_at INTEGER NOT NULL,
        last_error      TEXT
      );

      -- The single active worker's lease; one row.
      CREATE TABLE worker_lease (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        worker_id      TEXT NOT NULL,
        pid            INTEGER NOT NULL,
        hostname       TEXT NOT NULL,
        acquired_at    INTEGER NOT NULL,
        heartbeat_at   INTEGER NOT NULL,
        current_job_id TEXT
      );

      -- Small key/value facts about the database itself (e.g. the readiness probe's last write).
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: "worker-resident-model",
    sql: `
      -- The worker model the active worker holds now, for the queue position of queued jobs.
      ALTER TABLE worker_lease ADD COLUMN resident_model TEXT;
    `,
  },
  {
    version: 3,
    name: "drop-redundant-queue-index",
    sql: `
      -- jobs_by_state (state, id) already serves "oldest queued job" and the queue listing.
      DROP INDEX jobs_queued;
    `,
  },
];
