import type http from "node:http";
import type { ForemanConfig, Logger, Store } from "@foreman/shared";
import express, { type Express } from "express";
import { createFastSubmit } from "./jobs/fast-submit.js";
import { createJobBatcher, type JobBatcher } from "./jobs/job-batcher.js";
import { isAuthorized, requireApiToken } from "./middleware/api-token.js";
import { errorHandler, notFoundHandler } from "./middleware/errors.js";
import type { TargetProxy } from "./proxy/target-proxy.js";
import { generationRoutes } from "./routes/generation.js";
import { healthRoutes } from "./routes/health.js";
import { jobsRoutes } from "./routes/jobs.js";
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
  const batcher = deps.batcher ?? createJobBatcher(deps.store, deps.wake);
  app.use(generationRoutes({ ...deps, batcher }));
  app.use(jobsRoutes(deps));
  app.use(managementGate());
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

/**
 * The production request listener: POST /jobs (the submission hot path) and the pass-through routes (the
 * proxy's hot path) are dispatched on the raw request without Express's per-request setup; every other
 * request, and any that is not authorized, goes through the Express app, which answers it (or its 401).
 */
export function createRequestListener(deps: AppDeps): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const batcher = deps.batcher ?? createJobBatcher(deps.store, deps.wake);
  const app = createApp({ ...deps, batcher });
  const dispatch = createPassthroughDispatcher(deps);
  const submit = createFastSubmit({
    config: deps.config,
    store: deps.store,
    batcher,
    logger: deps.logger,
    bodyLimit: deps.config.bodyLimit,
    starvationMs: deps.config.starvationMs,
  });
  const token = deps.config.apiToken;
  return (req, res) => {
    if (token !== undefined && !isAuthorized(req.headers.authorization, token)) return void app(req, res);
    if (req.method === "POST" && (req.url === "/jobs" || req.url?.startsWith("/jobs?"))) return submit(req, res);
    if (dispatch(req, res)) return;
    app(req, res);
  };
}
