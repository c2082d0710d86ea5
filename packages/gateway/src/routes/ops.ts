import { Router } from "express";
import type { AppDeps } from "../app.js";
import type { EventStreams } from "../ops/event-stream.js";
import { parseEventId } from "../ops/event-stream.js";
import type { GatewayMetrics } from "../ops/metrics.js";
import { statusView } from "../ops/status-view.js";
import type { ResponseDrain } from "../response-drain.js";

/** The operator's routes, outside Ollama's namespace: status, Prometheus metrics and the live event stream. */
export function opsRoutes(
  deps: AppDeps & { metrics: GatewayMetrics; events: EventStreams; drain?: ResponseDrain | undefined },
): Router {
  const router = Router();
  router.get("/status", (_req, res) => {
    res.json(statusView(deps.store, deps.config));
  });
  router.get("/metrics", async (_req, res) => {
    const text = await deps.metrics.scrape();
    res.setHeader("content-type", deps.metrics.contentType);
    res.end(text);
  });
  router.get("/events", (req, res) => {
    const model = typeof req.query.model === "string" ? req.query.model : undefined;
    const job = typeof req.query.job === "string" ? req.query.job : undefined;
    const since = typeof req.query.since === "string" ? req.query.since : undefined;
    const resume = parseEventId(req.get("last-event-id") ?? since);
    const controller = new AbortController();
    // A shutdown ends the stream; an SSE client reconnects with its Last-Event-ID and misses nothing.
    const untrack = deps.drain?.track(() => controller.abort());
    res.on("close", () => untrack?.());
    deps.events.serve(res, { ...(model ? { model } : {}), ...(job ? { job } : {}) }, resume, controller.signal);
  });
  return router;
}
