import type { Db } from "./database.js";

/**
 * Forward-only schema migrations. A migration is never edited once released: add a new one instead.
 * Versions are consecutive integers; `migrate` applies the missing ones in order.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Runs after `sql`, for a change SQL alone cannot say (rebuilding a table from its current schema). */
  apply?: (db: Db) => void;
}

// Migration 12's trigger bodies, each used by two triggers (a job enters the queue when inserted or
// requeued, and leaves it when it moves on or is deleted). A bucket emptied is removed, so the buckets
// summed over a range are only the seconds that still have queued jobs.
const COUNT_INTO_BUCKETS = `BEGIN
        INSERT INTO queue_buckets (prefix, n) VALUES (substr(NEW.id, 1, 8), 1)
          ON CONFLICT (prefix) DO UPDATE SET n = n + 1;
        INSERT INTO queue_load_buckets (model, runner_options, prefix, n)
          VALUES (NEW.model, NEW.runner_options, substr(NEW.id, 1, 8), 1)
          ON CONFLICT (model, runner_options, prefix) DO UPDATE SET n = n + 1;
      END;`;
const COUNT_OUT_OF_BUCKETS = `BEGIN
        UPDATE queue_buckets SET n = n - 1 WHERE prefix = substr(OLD.id, 1, 8);
        DELETE FROM queue_buckets WHERE prefix = substr(OLD.id, 1, 8) AND n = 0;
        UPDATE queue_load_buckets SET n = n - 1
          WHERE model = OLD.model AND runner_options = OLD.runner_options AND prefix = substr(OLD.id, 1, 8);
        DELETE FROM queue_load_buckets
          WHERE model = OLD.model AND runner_options = OLD.runner_options AND prefix = substr(OLD.id, 1, 8) AND n = 0;
      END;`;

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
  {
    version: 4,
    name: "ended-jobs-by-mode",
    sql: `
      -- Sync and async jobs are kept for different periods: each retention sweep reads one mode's oldest.
      CREATE INDEX jobs_ended_by_mode ON jobs (mode, ended_at) WHERE ended_at IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: "metrics-and-system-events",
    sql: `
      -- Counters (and histogram buckets) the worker records in the same transaction as what they count,
      -- so a gateway's /metrics scrape shows the worker's side without the worker being reachable.
      -- labels is the Prometheus label set as rendered (model="x",le="1"), one row per series.
      CREATE TABLE metric_counters (
        name   TEXT NOT NULL,
        labels TEXT NOT NULL,
        value  REAL NOT NULL,
        PRIMARY KEY (name, labels)
      ) WITHOUT ROWID;

      -- Target and model events (up, down, loaded, unloaded) for the gateway's live event stream.
      CREATE TABLE system_events (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        type  TEXT NOT NULL,
        data  TEXT NOT NULL,
        at    INTEGER NOT NULL
      );

      -- Standby workers say they exist, for the status route.
      CREATE TABLE worker_standbys (
        worker_id    TEXT PRIMARY KEY,
        pid          INTEGER NOT NULL,
        hostname     TEXT NOT NULL,
        heartbeat_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: "webhook-endpoints",
    sql: `
      -- Webhook endpoints (a URL without its user, password and fragment) that are failing or disabled;
      -- an endpoint whose last attempt succeeded has no row.
      CREATE TABLE webhook_endpoints (
        endpoint             TEXT PRIMARY KEY,
        failing_since        INTEGER NOT NULL,          -- first failed attempt of the current run (epoch ms)
        consecutive_failures INTEGER NOT NULL,
        disabled_at          INTEGER,                   -- NULL while enabled
        disabled_until       INTEGER,                   -- when a trial delivery may be sent again
        disabled_reason      TEXT,
        updated_at           INTEGER NOT NULL
      );
    `,
  },
  {
    version: 7,
    name: "queue-totals-and-target-down-since",
    sql: `
      -- How many jobs are queued and how many bytes their requests hold, kept exact by triggers in the
      -- transaction of every insert, state change and delete: the gateway's admission check
      -- (FOREMAN_MAX_QUEUED_JOBS, FOREMAN_MAX_QUEUED_BYTES) reads one row whatever the queue's size.
      CREATE TABLE queue_totals (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        jobs  INTEGER NOT NULL,
        bytes INTEGER NOT NULL
      );
      INSERT INTO queue_totals (id, jobs, bytes)
        SELECT 1, COUNT(*), COALESCE(SUM(octet_length(request)), 0) FROM jobs WHERE state = 'queued';
      CREATE TRIGGER queue_totals_on_insert AFTER INSERT ON jobs WHEN NEW.state = 'queued'
      BEGIN
        UPDATE queue_totals SET jobs = jobs + 1, bytes = bytes + octet_length(NEW.request) WHERE id = 1;
      END;
      CREATE TRIGGER queue_totals_on_update AFTER UPDATE OF state, request ON jobs
        WHEN OLD.state = 'queued' OR NEW.state = 'queued'
      BEGIN
        UPDATE queue_totals SET
          jobs = jobs + (NEW.state = 'queued') - (OLD.state = 'queued'),
          bytes = bytes
            + CASE WHEN NEW.state = 'queued' THEN octet_length(NEW.request) ELSE 0 END
            - CASE WHEN OLD.state = 'queued' THEN octet_length(OLD.request) ELSE 0 END
        WHERE id = 1;
      END;
      CREATE TRIGGER queue_totals_on_delete AFTER DELETE ON jobs WHEN OLD.state = 'queued'
      BEGIN
        UPDATE queue_totals SET jobs = jobs - 1, bytes = bytes - octet_length(OLD.request) WHERE id = 1;
      END;

      -- When the target was first seen unreachable in the current outage (NULL while it is up).
      ALTER TABLE target_status ADD COLUMN down_since INTEGER;
      UPDATE target_status SET down_since = last_checked_at WHERE reachable = 0;
    `,
  },
  {
    version: 8,
    name: "queue-order-in-state-index",
    sql: `
      -- Queue positions are counted, not read (store/queue-position.ts): walking the queue in id order they
      -- need each job's model and age, so the index that already holds the queue in that order carries them
      -- and no table row is read. Widening it costs no extra index write per job, as a new index would.
      DROP INDEX jobs_by_state;
      CREATE INDEX jobs_by_state ON jobs (state, id, model, created_at);
    `,
  },
  {
    version: 9,
    name: "drain-by-load-key",
    sql: `
      -- Jobs drain by load key, the model plus the runner options that make Ollama reload it (num_ctx,
      -- num_batch, num_gpu, main_gpu, use_mmap, num_thread): '' when the request sets none. Jobs created
      -- before this version keep '' and drain by model alone, as they did.
      ALTER TABLE jobs ADD COLUMN runner_options TEXT NOT NULL DEFAULT '';
      DROP INDEX jobs_queued_by_model;
      CREATE INDEX jobs_queued_by_model ON jobs (model, runner_options, id) WHERE state = 'queued';
      -- The queue walks of the position count group by load key, so the index they read carries it.
      DROP INDEX jobs_by_state;
      CREATE INDEX jobs_by_state ON jobs (state, id, model, runner_options, created_at);
      -- The runner options of the worker model the active worker holds, beside resident_model.
      ALTER TABLE worker_lease ADD COLUMN resident_runner_options TEXT;
    `,
  },
  {
    version: 10,
    name: "worker-resident-load-keys",
    sql: `
      -- A target with more than two model slots holds several worker models: resident_model and
      -- resident_runner_options name the most recently used one, this JSON array of [model, runner options]
      -- the others, most recent first (NULL when there are none).
      ALTER TABLE worker_lease ADD COLUMN resident_others TEXT;
      -- How many worker models the active worker keeps resident at most (NULL: one, the two-slot default),
      -- so queue positions follow the same order as its claims.
      ALTER TABLE worker_lease ADD COLUMN worker_slots INTEGER;
    `,
  },
  {
    version: 11,
    name: "embedding-job-kinds",
    // Embedding requests for a model other than the embedder are jobs: kind 'embed' (/api/embed and
    // /v1/embeddings) and 'embeddings' (the legacy /api/embeddings).
    sql: "",
    apply: (db) =>
      widenCheck(
        db,
        "jobs",
        "CHECK (kind IN ('chat', 'generate'))",
        "CHECK (kind IN ('chat', 'generate', 'embed', 'embeddings'))",
      ),
  },
  {
    version: 12,
    name: "queue-buckets",
    sql: `
      -- How many jobs are queued per second of their id's time (an id's first 8 characters: 1,024 ms of a
      -- ULID), in all and per load key, kept exact by triggers in the transaction of every insert, state
      -- change and delete. A queue position counts the jobs ahead of it (store/queue-position.ts): with these,
      -- a count over a long range sums one row per second it spans and counts jobs only in its two end
      -- seconds, instead of stepping through every index entry of the range.
      CREATE TABLE queue_buckets (
        prefix TEXT PRIMARY KEY,
        n      INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE queue_load_buckets (
        model          TEXT NOT NULL,
        runner_options TEXT NOT NULL,
        prefix         TEXT NOT NULL,
        n              INTEGER NOT NULL,
        PRIMARY KEY (model, runner_options, prefix)
      ) WITHOUT ROWID;
      INSERT INTO queue_buckets (prefix, n)
        SELECT substr(id, 1, 8), COUNT(*) FROM jobs WHERE state = 'queued' GROUP BY 1;
      INSERT INTO queue_load_buckets (model, runner_options, prefix, n)
        SELECT model, runner_options, substr(id, 1, 8), COUNT(*) FROM jobs WHERE state = 'queued' GROUP BY 1, 2, 3;
      CREATE TRIGGER queue_buckets_on_insert AFTER INSERT ON jobs WHEN NEW.state = 'queued'
      ${COUNT_INTO_BUCKETS}
      CREATE TRIGGER queue_buckets_on_requeue AFTER UPDATE OF state ON jobs
        WHEN OLD.state <> 'queued' AND NEW.state = 'queued'
      ${COUNT_INTO_BUCKETS}
      CREATE TRIGGER queue_buckets_on_leave AFTER UPDATE OF state ON jobs
        WHEN OLD.state = 'queued' AND NEW.state <> 'queued'
      ${COUNT_OUT_OF_BUCKETS}
      CREATE TRIGGER queue_buckets_on_delete AFTER DELETE ON jobs WHEN OLD.state = 'queued'
      ${COUNT_OUT_OF_BUCKETS}
    `,
  },
];

/**
 * Replaces one CHECK constraint of `table`. SQLite cannot alter a constraint, so this is its documented
 * table rebuild (sqlite.org/lang_altertable.html, "other kinds of table schema changes"): a copy made from
 * the table's current CREATE statement with the constraint replaced, the rows copied, the old table
 * dropped, the copy renamed, and the table's indexes and triggers created again from their own stored
 * statements, so columns and indexes added by earlier migrations are kept whatever they are. `migrate`
 * runs it with foreign keys off (else the drop would cascade into the rows that reference the table).
 */
function widenCheck(db: Db, table: string, from: string, to: string): void {
  const schema = db.prepare<[string], { type: string; name: string; sql: string | null }>(
    "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ? ORDER BY rowid",
  );
  const rows = schema.all(table);
  const create = rows.find((r) => r.type === "table")?.sql;
  if (!create?.includes(from)) throw new Error(`table ${table} has no constraint ${from}`);
  const copy = `${table}_rebuilt`;
  const prefix = new RegExp(`^CREATE TABLE ${table}\\b`);
  db.exec(create.replace(prefix, `CREATE TABLE ${copy}`).replace(from, to));
  db.exec(`INSERT INTO ${copy} SELECT * FROM ${table}`);
  db.exec(`DROP TABLE ${table}`);
  db.exec(`ALTER TABLE ${copy} RENAME TO ${table}`);
  // Automatic indexes (primary key, UNIQUE columns) have no statement: the new table made its own.
  for (const r of rows) if (r.type !== "table" && r.sql) db.exec(r.sql);
}
