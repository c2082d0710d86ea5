import type { IncomingMessage, ServerResponse } from "node:http";
import type { SimClock } from "./clock.js";
import type { FaultPlan } from "./faults.js";
import type { FaultRequest, SimModel } from "./interfaces.js";
import type { ModelCatalog } from "./model-catalog.js";
import type { Residency } from "./residency.js";
import type { CallRecord, StatsRecorder } from "./stats.js";

/** Settings fixed when the simulator starts. */
export interface SimConfig {
  version: string;
  defaultKeepAliveMs: number;
  defaultTokens: number;
  pullMs: number;
  registry: SimModel[] | undefined;
}

/** Everything a route handler may use; built once per simulator. */
export interface RouteContext {
  catalog: ModelCatalog;
  residency: Residency;
  stats: StatsRecorder;
  faults: FaultPlan;
  config: SimConfig;
  clock: SimClock;
  /** The control routes reach the simulator itself through these. */
  control: {
    applyFaults(request: FaultRequest): Promise<void>;
    faultSnapshot(): unknown;
    setModels(models: SimModel[]): void;
  };
}

/** One request as a handler sees it. */
export interface RequestScope {
  req: IncomingMessage;
  res: ServerResponse;
  call: CallRecord;
  /** The URL path without the query string. */
  path: string;
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal;
  /** Route parameters (":digest"). */
  params: Record<string, string>;
}

export type RouteHandler = (scope: RequestScope, ctx: RouteContext) => Promise<void> | void;
