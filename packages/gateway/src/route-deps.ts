import type { ForemanConfig, Logger, Store } from "@foreman/shared";
import type { JobBatcher } from "./jobs/job-batcher.js";
import type { GatewayMetrics } from "./ops/metrics.js";
import type { ResponseDrain } from "./response-drain.js";

/** What the routes that create and serve jobs are built from (generation and the jobs API alike). */
export interface JobRouteDeps {
  config: ForemanConfig;
  store: Store;
  logger: Logger;
  /** Wakes the worker after a job or a cancel is committed. */
  wake: () => void;
  batcher: JobBatcher;
  /** Shutdown's hold on open responses (streams, long polls). */
  drain?: ResponseDrain;
  metrics?: GatewayMetrics;
}
