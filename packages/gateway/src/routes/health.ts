import { Router } from "express";
import type { AppDeps } from "../app.js";

/**
 * `/healthz` says only that this process is alive. `/readyz` says whether it can do useful work: the
 * database takes a write and a worker heartbeat is fresh; the target's reachability is reported but does
 * not fail readiness, because an unreachable target is transient and jobs still queue.
 */
export function healthRoutes({ store, logger }: AppDeps): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", (_req, res) => {
    let writable = true;
    let dbError: string | undefined;
    try {
      store.probeWritable();
    } catch (err) {
      writable = false;
      dbError = (err as Error).message;
      logger.warn("readiness: database not writable", { error: dbError });
    }
    const holder = safely(() => store.workerLease.holder());
    const fresh = holder ? store.workerLease.isFresh(holder) : false;
    const target = safely(() => store.target.get());
    const ready = writable && fresh;
    res.status(ready ? 200 : 503).json({
      status: ready ? "ready" : "not ready",
      database: { writable, ...(dbError ? { error: dbError } : {}) },
      worker: holder
        ? {
            fresh,
            pid: holder.pid,
            hostname: holder.hostname,
            heartbeat_age_ms: Date.now() - holder.heartbeatAt,
            current_job_id: holder.currentJobId,
          }
        : { fresh: false, error: "no worker has registered a heartbeat" },
      target: target
        ? {
            reachable: target.reachable,
            version: target.version,
            last_seen_at: target.lastSeenAt ? new Date(target.lastSeenAt).toISOString() : null,
            last_error: target.lastError,
          }
        : { reachable: null, error: "not polled yet" },
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
