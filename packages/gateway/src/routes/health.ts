import { Router } from "express";
import type { AppDeps } from "../app.js";
import { isAuthorized } from "../middleware/api-token.js";

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

/**
 * `/healthz` says only that this process is alive. `/readyz` says whether foreman can accept work: the
 * database file is the one this process opened and takes a write, and a worker heartbeat is fresh. The
 * target's reachability is reported (since when it is down, how many jobs wait) but does not fail
 * readiness, because an unreachable target is transient and jobs still queue.
 *
 * Orchestrators probe it without credentials, so its body holds only what deciding needs; the worker's
 * pid, host name and current job, the target's version and errors, and the database's error are shown
 * only to a caller that presents FOREMAN_API_TOKEN.
 */
export function healthRoutes({ store, logger, config, databaseFile }: AppDeps): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", (req, res) => {
    const detailed = config.apiToken !== undefined && isAuthorized(req.headers.authorization, config.apiToken);
    const file = databaseFile?.check() ?? "ok";
    let writable = file === "ok";
    let dbError: string | undefined;
    if (writable) {
      try {
        store.probeWritable();
      } catch (err) {
        writable = false;
        dbError = (err as Error).message;
        logger.warn("readiness: database not writable", { error: dbError });
      }
    }
    const holder = safely(() => store.workerLease.holder());
    const fresh = holder ? store.workerLease.isFresh(holder) : false;
    const target = safely(() => store.target.get());
    const queued = safely(() => store.queueTotals.get().jobs);
    const ready = writable && fresh;
    res.status(ready ? 200 : 503).json({
      status: ready ? "ready" : "not ready",
      database: { writable, file, ...(detailed && dbError ? { error: dbError } : {}) },
      worker: {
        fresh,
        heartbeat_age_ms: holder ? Date.now() - holder.heartbeatAt : null,
        ...(detailed && holder
          ? { pid: holder.pid, hostname: holder.hostname, current_job_id: holder.currentJobId }
          : {}),
      },
      target: {
        reachable: target ? target.reachable : null,
        down_since: iso(target?.downSince),
        last_seen_at: iso(target?.lastSeenAt),
        ...(detailed && target ? { version: target.version, last_error: target.lastError } : {}),
      },
      queue: { queued },
    });
  });
  return router;
}

function safely<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}
