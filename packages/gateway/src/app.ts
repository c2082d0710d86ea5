import type { ForemanConfig, Logger, Store } from "@foreman/shared";
import express, { type Express } from "express";
import { requireApiToken } from "./middleware/api-token.js";
import { errorHandler, notFoundHandler } from "./middleware/errors.js";
import type { TargetProxy } from "./proxy/target-proxy.js";
import { healthRoutes } from "./routes/health.js";
import { passthroughRoutes } from "./routes/passthrough.js";
import { rootRoutes } from "./routes/root.js";

export interface AppDeps {
  config: ForemanConfig;
  store: Store;
  logger: Logger;
  proxy: TargetProxy;
}

/** Builds the gateway's Express app from its dependencies, so tests drive the real thing with supertest. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  // Health comes first and outside the token check: orchestrators probe it without credentials.
  app.use(healthRoutes(deps));
  app.use(rootRoutes());
  app.use(requireApiToken(deps.config.apiToken));
  app.use(passthroughRoutes(deps));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
