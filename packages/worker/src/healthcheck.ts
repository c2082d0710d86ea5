import os from "node:os";
import { createWorkerLeaseStore, loadConfig, openDatabase } from "@foreman/shared";
import { judgeWorkerHealth } from "./worker-health.js";

/**
 * The worker container's health check (the image's compose healthcheck runs
 * `node /app/packages/worker/dist/healthcheck.js`): exit 0 while a worker holds a fresh lease, 1 otherwise,
 * with one line that says why. It opens the database read-only and never migrates or writes, so it cannot
 * disturb the worker it checks.
 */
function check(): { healthy: boolean; message: string } {
  try {
    const config = loadConfig();
    const db = openDatabase({ path: config.dbPath, readonly: true, busyTimeoutMs: 2000 });
    try {
      const lease = createWorkerLeaseStore(db, { staleMs: config.workerStaleMs });
      const holder = lease.holder();
      return judgeWorkerHealth(holder, { fresh: lease.isFresh(holder), hostname: os.hostname(), now: Date.now() });
    } finally {
      db.close();
    }
  } catch (err) {
    return { healthy: false, message: `cannot read the worker lease: ${(err as Error).message}` };
  }
}

const health = check();
process.stdout.write(`${health.message}\n`);
process.exitCode = health.healthy ? 0 : 1;
