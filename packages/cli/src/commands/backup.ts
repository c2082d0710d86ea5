import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { readDbPath } from "../env.js";
import { CliError, EXIT } from "../exit-codes.js";
import { formatBytes, formatDuration } from "../format.js";

interface BackupOptions extends JsonOption {
  force?: boolean;
}

/**
 * better-sqlite3 12 on Node 24 aborts the process when the garbage collector finalizes one of its
 * native wrappers (see docs/adr/0013): every database and statement made here stays reachable until exit.
 */
const retained: unknown[] = [];

/** `sqlite3_backup_step(-1)`: the rest of the database in one step (better-sqlite3 caps the count at 2^31-1). */
const ALL_PAGES = 0x7fffffff;

/**
 * `foreman backup <file>`: an online copy of the database through SQLite's backup API while gateway and
 * worker keep running, checked with `PRAGMA integrity_check` before it replaces the destination.
 */
export function registerBackup(program: Command, kit: CommandKit): void {
  withJson(program.command("backup"))
    .description("copy the database while foreman runs (SQLite's online backup), then verify the copy")
    .argument("<file>", "where the copy goes (a new file; --force replaces an existing one)")
    .option("--force", "replace the file if it exists")
    .action(
      kit.act(async (file: string, options: BackupOptions) => {
        const { io } = kit;
        const source = readDbPath(io.env, io.cwd);
        const destination = path.resolve(io.cwd, file);
        const started = io.now();
        const result = await backupDatabase(source, destination, options.force === true);
        const seconds = (io.now() - started) / 1000;
        if (options.json) printJson(io, { source, ...result, seconds });
        else {
          const jobs = result.jobs === null ? "" : `, ${result.jobs} ${result.jobs === 1 ? "job" : "jobs"}`;
          io.stdout.write(
            `backed up ${source} to ${result.path}: ${formatBytes(result.bytes)} (${result.bytes} bytes), ` +
              `integrity ok${jobs}, in ${formatDuration(seconds * 1000)}\n`,
          );
        }
        return EXIT.ok;
      }),
    );
}

export interface BackupResult {
  path: string;
  bytes: number;
  pages: number;
  integrity: "ok";
  /** Jobs in the copy, or null when it has no jobs table (a database foreman never migrated). */
  jobs: number | null;
}

export async function backupDatabase(source: string, destination: string, force: boolean): Promise<BackupResult> {
  if (!fs.existsSync(source)) {
    throw new CliError(`no database at ${source}: set FOREMAN_DB_PATH, or FOREMAN_DATA_DIR to the data directory`);
  }
  if (path.resolve(source) === destination) throw new CliError("the backup cannot replace the database itself");
  if (fs.existsSync(destination) && !force) {
    throw new CliError(`${destination} already exists: choose another file, or pass --force to replace it`);
  }
  if (!fs.existsSync(path.dirname(destination))) throw new CliError(`the directory of ${destination} does not exist`);
  // Written beside the destination under another name and renamed at the end, so a failed or interrupted
  // backup never leaves a half copy, nor destroys the previous one, under the name asked for.
  const partial = `${destination}.partial-${process.pid}`;
  removeDatabaseFiles(partial);
  try {
    const db = retain(new Database(source, { readonly: true, fileMustExist: true, timeout: 10_000 }));
    let pages: number;
    try {
      // All pages in one step: in WAL mode that step reads one consistent snapshot without blocking the
      // writers, whereas copying in slices restarts each time the worker commits meanwhile and may never end.
      const progress = await db.backup(partial, { progress: () => ALL_PAGES });
      pages = progress.totalPages;
    } finally {
      db.close();
    }
    const jobs = verifyCopy(partial);
    fs.renameSync(partial, destination);
    return { path: destination, bytes: fs.statSync(destination).size, pages, integrity: "ok", jobs };
  } catch (error) {
    removeDatabaseFiles(partial);
    if (error instanceof CliError) throw error;
    throw new CliError(`backup of ${source} failed: ${(error as Error).message}`);
  }
}

/**
 * Makes the copy one self-contained file (rollback journal instead of WAL, so no -wal file belongs with
 * it), checks its integrity and counts its jobs.
 */
function verifyCopy(file: string): number | null {
  const copy = retain(new Database(file, { fileMustExist: true }));
  try {
    retain(copy.prepare("PRAGMA journal_mode = DELETE")).get();
    const problems = retain(copy.prepare("PRAGMA integrity_check")).pluck().all() as string[];
    if (problems.length !== 1 || problems[0] !== "ok") {
      throw new CliError(`the copy failed its integrity check: ${problems.slice(0, 5).join("; ")}`);
    }
    const hasJobs = retain(copy.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'jobs'")).get();
    if (!hasJobs) return null;
    return retain(copy.prepare("SELECT COUNT(*) FROM jobs")).pluck().get() as number;
  } finally {
    copy.close();
  }
}

function retain<T>(handle: T): T {
  retained.push(handle);
  return handle;
}

function removeDatabaseFiles(file: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) fs.rmSync(`${file}${suffix}`, { force: true });
}
