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
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    db.pragma(`user_version = ${latest}`);
    return { from: row.v, to: Math.max(row.v, latest), applied };
  });
  return run.immediate();
}
