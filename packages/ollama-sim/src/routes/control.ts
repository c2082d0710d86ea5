import { FaultRequestError, parseFaultRequest } from "../faults.js";
import { readJsonBody, sendError, sendJson } from "../http-io.js";
import type { SimModel } from "../interfaces.js";
import type { RequestScope, RouteContext } from "../route-context.js";

/**
 * The simulator's own routes, under /_sim/ so they can never collide with Ollama's namespace.
 * They skip the token check and every fault, and are not counted in the request statistics.
 */

/** GET /_sim/stats */
export function statsRoute(scope: RequestScope, ctx: RouteContext): void {
  sendJson(scope.res, 200, {
    ...ctx.stats.snapshot(),
    loaded: ctx.residency.snapshot(),
    activeFaults: ctx.control.faultSnapshot(),
  });
}

/** POST /_sim/reset: zero the counters; what is loaded stays loaded. */
export function resetRoute(scope: RequestScope, ctx: RouteContext): void {
  ctx.stats.reset();
  sendJson(scope.res, 200, { ok: true });
}

/** GET /_sim/loaded */
export function loadedRoute(scope: RequestScope, ctx: RouteContext): void {
  sendJson(scope.res, 200, { models: ctx.residency.snapshot() });
}

/** GET /_sim/faults */
export function faultsRoute(scope: RequestScope, ctx: RouteContext): void {
  sendJson(scope.res, 200, ctx.control.faultSnapshot());
}

/** POST /_sim/faults: arm faults; the answer goes out before a refusal closes the port. */
export async function setFaultsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "FaultRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  let request: ReturnType<typeof parseFaultRequest>;
  try {
    request = parseFaultRequest(parsed.body);
  } catch (error) {
    if (error instanceof FaultRequestError) return sendError(scope.res, 400, error.message);
    throw error;
  }
  const { refuse, ...immediate } = request;
  await ctx.control.applyFaults(immediate);
  if (!refuse) return sendJson(scope.res, 200, ctx.control.faultSnapshot());
  const body = JSON.stringify({ ...(ctx.control.faultSnapshot() as object), refusingForMs: refuse.ms });
  scope.res.writeHead(200, { "Content-Type": "application/json; charset=utf-8", Connection: "close" });
  scope.res.end(body, () => {
    void ctx.control.applyFaults({ refuse });
  });
}

/** DELETE /_sim/faults */
export async function clearFaultsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  await ctx.control.applyFaults({ clear: true });
  sendJson(scope.res, 200, ctx.control.faultSnapshot());
}

/** GET /_sim/models: the library as SimModel objects. */
export function listModelsRoute(scope: RequestScope, ctx: RouteContext): void {
  sendJson(scope.res, 200, { models: ctx.catalog.sources() });
}

/** PUT /_sim/models: replace the library with {"models": [SimModel, ...]}. */
export async function setModelsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "SimModels");
  const models = parsed.ok ? parsed.body.models : undefined;
  const valid =
    Array.isArray(models) &&
    models.every((m) => typeof m === "object" && m !== null && typeof (m as SimModel).name === "string");
  if (!valid) return sendError(scope.res, 400, 'the body must be {"models": [{"name": "llama3.2:latest", ...}]}');
  try {
    ctx.control.setModels(models as SimModel[]);
  } catch (error) {
    return sendError(scope.res, 400, (error as Error).message);
  }
  sendJson(scope.res, 200, { models: ctx.catalog.sources() });
}
