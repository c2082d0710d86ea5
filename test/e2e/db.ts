import path from "node:path";
import Database from "better-sqlite3";
import { retainNativeHandles } from "../../packages/shared/src/store/database.js";

/** Read-only peeks at a foreman database from a test, the way an operator would with sqlite3. */
export function openDb(dataDir: string) {
  const db = retainNativeHandles(
    new Database(path.join(dataDir, "foreman.db"), { readonly: true, fileMustExist: true }),
  );
  return {
    job(id: string) {
      return db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as
        | {
            id: string;
            state: string;
            attempts: number;
            model: string;
            loading_at: number | null;
            error: string | null;
          }
        | undefined;
    },
    jobs() {
      return db.prepare("SELECT id, state, model, attempts, mode FROM jobs ORDER BY id").all() as Array<{
        id: string;
        state: string;
        model: string;
        attempts: number;
        mode: string;
      }>;
    },
    count(): number {
      return (db.prepare("SELECT COUNT(*) AS n FROM jobs").get() as { n: number }).n;
    },
    history(id: string) {
      return db
        .prepare("SELECT from_state, to_state, attempt FROM job_transitions WHERE job_id = ? ORDER BY id")
        .all(id) as Array<{
        from_state: string | null;
        to_state: string;
        attempt: number;
      }>;
    },
    close: () => db.close(),
  };
}
