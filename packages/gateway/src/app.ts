import type http from "node:http";
import { type DatabaseFileWatch, type ForemanConfig, type Logger, type Store, targetPathFor } from "@foreman/shared";
import express, { type Express } from "express";
import { createFastSubmit } from "./jobs/fast-submit.js";
import { createJobBatcher, type JobBatcher } from "./jobs/job-batcher.js";
import { answerAsSyncJob } from "./jobs/sync-job.js";
import { isPlainUtf8Body } from "./json-body.js";
import { isAuthorized, requireApiToken } from "./middleware/api-token.js";
import { answerRawError, errorHandler, notFoundHandler } from "./middleware/errors.js";
import { createEventStreams, type EventStreams } from "./ops/event-stream.js";
import { createGatewayMetrics, type GatewayMetrics } from "./ops/metrics.js";
import { EMBED_ROUTES, routeLabel } from "./ops/route-label.js";
import type { TargetProxy } from "./proxy/target-proxy.js";
import type { ResponseDrain } from "./response-drain.js";
import { createFastGeneration, generationRoutes } from "./routes/generation.js";
import { healthRoutes } from "./routes/health.js";
import { jobsRoutes } from "./routes/jobs.js";
import { opsRoutes } from "./routes/ops.js";
import { createPassthroughDispatcher, managementGate } from "./routes/passthrough.js";
import { rootRoutes } from "./routes/root.js";

export interface AppDeps {
  config: ForemanConfig;
  store: Store;
  logger: Logger;
  proxy: TargetProxy;
  /** Wakes the worker after a job or a cancel is committed. */
  wake: () => void;
  /** Group commit for new jobs; one is made when not given. */
  batcher?: JobBatcher;
  /** Open long-lived responses, ended by a shutdown after its grace period. */
  drain?: ResponseDrain;
  /** This gateway's metrics registry; one is made when not given. */
  metrics?: GatewayMetrics;
  /** The live event stream's readers; made when not given. */
  events?: EventStreams;
  /** Whether the database file is still the one opened; readiness fails when it is not. */
  databaseFile?: Pick<DatabaseFileWatch, "check">;
}

/**
 * Builds the gateway's Express app from its dependencies, so tests drive the real thing with supertest. It
 * serves every route but POST /jobs and the pass-through routes, whose only entrance is the request listener
 * below.
 */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  // Health comes first and outside the token check: orchestrators probe it without credentials.
  app.use(healthRoutes(deps));
  app.use(rootRoutes());
  app.use(requireApiToken(deps.config.apiToken));
  // One batcher per app: jobs created through any route share its group commits.
  const batcher = deps.batcher ?? createJobBatcher(deps.store, deps.wake, deps.config);
  const metrics = deps.metrics ?? createGatewayMetrics(deps.store);
  const events = deps.events ?? createEventStreams({ store: deps.store, dbPath: deps.config.dbPath });
  app.use(opsRoutes({ ...deps, metrics, events }));
  app.use(generationRoutes({ ...deps, batcher, metrics }));
  app.use(jobsRoutes({ ...deps, batcher, metrics }));
  app.use(managementGate());
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

/**
 * The production request listener: POST /jobs (the submission hot path), the generation routes (on the way
 * to a first token) and the pass-through routes (the proxy's hot path) are dispatched on the raw request
 * without Express's per-request setup; every other request, and any that is not authorized, goes through
 * the Express app, which answers it (or its 401).
 */
export function createRequestListener(deps: AppDeps): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const batcher = deps.batcher ?? createJobBatcher(deps.store, deps.wake, deps.config);
  const metrics = deps.metrics ?? createGatewayMetrics(deps.store);
  const app = createApp({ ...deps, batcher, metrics });
  const jobDeps = { ...deps, batcher, metrics };
  const dispatch = createPassthroughDispatcher({
    ...deps,
    queueEmbedding: async (res, input, bytes) => {
      try {
        await answerAsSyncJob(jobDeps, input, bytes, res);
      } catch (err) {
        answerRawError(res, err, deps.logger, targetPathFor(input));
      }
    },
  });
  const submit = createFastSubmit({
    config: deps.config,
    store: deps.store,
    batcher,
    logger: deps.logger,
    bodyLimit: deps.config.bodyLimit,
    starvationMs: deps.config.starvationMs,
  });
  const generate = createFastGeneration({ ...deps, batcher, metrics });
  const token = deps.config.apiToken;
  const logger = deps.logger;
  return (req, res) => {
    // One metric sample and one log line (at "http", below the default "info") per request, on its end.
    const started = process.hrtime.bigint();
    // "finish" fires once; `on` spares the wrapper `once` allocates on every request.
    res.on("finish", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(req.url);
      // An embedding that ran as a job (it carries the job's id) waited in the queue: not proxy latency.
      const proxiedEmbed = EMBED_ROUTES.has(route) && !res.hasHeader("X-Foreman-Job-Id");
      metrics.request(route, req.method ?? "GET", res.statusCode, seconds, proxiedEmbed);
      // Checked first: winston formats a line before its transport drops it for its level, and this runs on
      // every request of the pass-through hot path, where the "http" level is normally off.
      if (!logger.isLevelEnabled("http")) return;
      logger.http("request", {
        method: req.method,
        route,
        status: res.statusCode,
        duration_ms: Math.round(seconds * 1e6) / 1000,
      });
    });
    if (token !== undefined && !isAuthorized(req.headers.authorization, token)) return void app(req, res);
    if (
      req.method === "POST" &&
      (req.url === "/jobs" || req.url?.startsWith("/jobs?")) &&
      isPlainUtf8Body(req.headers)
    ) {
      return submit(req, res);
    }
    if (generate(req, res)) return;
    if (dispatch(req, res)) return;
    app(req, res);
  };
}
