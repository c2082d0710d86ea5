import type { Db } from "./database.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

export interface MigrationResult {
  from: number;
  to: number;
  applied: number[];
}

/**
 * Applies missing migrations in one IMMEDIATE transaction. When gateway and worker start at the same
 * moment, one takes the write lock and migrates; the other waits on the busy timeout, then reads the new
 * version inside its own transaction and applies nothing. A crash mid-way rolls the whole batch back.
 *
 * Foreign keys are off while migrations run (SQLite ignores the switch inside a transaction, so it is
 * flipped around it): a migration that rebuilds a table (the only way to change a CHECK constraint) drops
 * the old one, and with foreign keys on that drop would cascade into every job's history, outbox rows
 * and artifacts. The batch commits only if `foreign_key_check` then finds nothing dangling.
 */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): MigrationResult {
  const run = db.transaction((): MigrationResult => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const row = db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").get() as { v: number };
    const latest = migrations.at(-1)?.version ?? 0;
    if (row.v > latest) {
      throw new Error(
        `database schema version ${row.v} is newer than this foreman understands (${latest}); upgrade foreman`,
      );
    }
    const applied: number[] = [];
    const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    for (const m of migrations) {
      if (m.version <= row.v) continue;
      db.exec(m.sql);
      m.apply?.(db);
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    if (applied.length > 0) {
      const dangling = db.prepare("PRAGMA foreign_key_check").all();
      if (dangling.length > 0) {
        throw new Error(
          `migration left ${dangling.length} rows pointing at missing rows: ${JSON.stringify(dangling[0])}`,
        );
      }
    }
    db.pragma(`user_version = ${latest}`);
    return { from: row.v, to: Math.max(row.v, latest), applied };
  });
  const foreignKeys = db.pragma("foreign_keys", { simple: true }) === 1;
  if (foreignKeys) db.pragma("foreign_keys = OFF");
  try {
    return run.immediate();
  } finally {
    if (foreignKeys) db.pragma("foreign_keys = ON");
  }
}
