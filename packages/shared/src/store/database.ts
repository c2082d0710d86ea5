import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

export type Db = Database.Database;

/**
 * better-sqlite3 12 wraps databases and statements in Node's raw `ObjectWrap`; on Node ≥ 24.19 a wrapper
 * finalized by a garbage collection that runs outside a JavaScript context aborts the whole process
 * (`RemoveEnvironmentCleanupHook … (env) != nullptr`, WiseLibs/better-sqlite3#1515; 13.x fixes it but needs
 * Node 22, and we support 20). Keeping every wrapper reachable means none is ever finalized. foreman prepares
 * its statements once at start, so this holds a few dozen objects for the life of the process (ADR 0013).
 */
const retainedHandles: unknown[] = [];

export function retainNativeHandles<T extends Db>(db: T): T {
  retainedHandles.push(db);
  const prepare = db.prepare.bind(db);
  db.prepare = ((...args: Parameters<Db["prepare"]>) => {
    const statement = prepare(...args);
    retainedHandles.push(statement);
    return statement;
  }) as Db["prepare"];
  // The library's own pragma() prepares on the native handle, out of reach of the wrapper above; this one
  // goes through it. (transaction() caches its BEGIN/COMMIT statements on the retained database.)
  db.pragma = ((source: string, options?: { simple?: boolean }) => {
    const statement = db.prepare(`PRAGMA ${source}`);
    if (!statement.reader) {
      statement.run();
      return options?.simple ? undefined : [];
    }
    return options?.simple ? statement.pluck().get() : statement.all();
  }) as Db["pragma"];
  return db;
}

/** Each connection's SQLite page cache, in KiB. */
export const PAGE_CACHE_KIB = 8192;

export interface OpenDatabaseOptions {
  path: string;
  synchronous?: "normal" | "full";
  /** How long a writer waits for another process's write lock before SQLITE_BUSY (ms). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/**
 * Opens the shared SQLite file with the settings both processes rely on (ADR 0003): WAL so the gateway
 * reads while the worker writes, a busy timeout so the two never fail on each other's short write
 * transactions, and foreign keys so deleting a job removes its history, outbox rows and artifacts.
 */
export function openDatabase(options: OpenDatabaseOptions): Db {
  fs.mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
  const db = retainNativeHandles(
    new Database(options.path, {
      timeout: options.busyTimeoutMs ?? 5000,
      readonly: options.readonly ?? false,
    }),
  );
  if (!options.readonly) enableWal(db);
  db.pragma(`synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
  db.pragma("foreign_keys = ON");
  // Keep WAL growth bounded under a steady write load; checkpoints run in whichever process commits.
  db.pragma("wal_autocheckpoint = 1000");
  // better-sqlite3 builds SQLite with a 16 MB page cache per connection, and a process that commits steadily
  // fills it with the pages of rows it has just written and will not read again (POST /jobs: 16 of the
  // gateway's RSS after 100,000 jobs). What is read again is the queue's index pages that the position counts
  // walk, about 6 MB with 100,000 jobs queued; and another process's commit empties a WAL reader's cache
  // anyway. mmap_size stays 0, SQLite's default: mapped file pages would count in RSS as well.
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  return db;
}

/**
 * Switching to WAL needs an exclusive moment on a brand-new file; when gateway and worker start together
 * one of them can get SQLITE_BUSY without the busy handler being consulted, so retry briefly.
 */
function enableWal(db: Db): void {
  for (let attempt = 0; ; attempt++) {
    try {
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (String(mode).toLowerCase() === "wal") return;
      throw new Error(`could not enable WAL journal mode (got ${String(mode)})`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") && attempt < 100) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        continue;
      }
      throw err;
    }
  }
}
