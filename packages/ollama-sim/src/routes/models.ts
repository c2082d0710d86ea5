import { goJson } from "../go-json.js";
import { readJsonBody, sendBody, sendError, sendJson } from "../http-io.js";
import { lookupName } from "../model-catalog.js";
import { listEntry, processEntry, showResponse } from "../model-views.js";
import type { RequestScope, RouteContext } from "../route-context.js";

/** GET and HEAD /api/version */
export function versionRoute(scope: RequestScope, ctx: RouteContext): void {
  sendJson(scope.res, 200, { version: ctx.config.version });
}

/** GET and HEAD /api/tags: the library, newest first. */
export function tagsRoute(scope: RequestScope, ctx: RouteContext): void {
  sendJson(scope.res, 200, { models: ctx.catalog.list().map(listEntry) });
}

/** GET /api/ps: loaded models, longest remaining keep-alive first (routes.go PsHandler). */
export function psRoute(scope: RequestScope, ctx: RouteContext): void {
  const models = ctx.residency.loadedModels().map(({ model, expiresAt }) => processEntry(model, expiresAt));
  sendJson(scope.res, 200, { models });
}

/** POST /api/show */
export async function showRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "api.ShowRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  const body = parsed.body;
  const requested =
    typeof body.model === "string" && body.model !== "" ? body.model : typeof body.name === "string" ? body.name : "";
  scope.call.entry.model = requested;
  if (requested === "") return sendError(scope.res, 400, "model is required");
  const lookup = lookupName(requested);
  if (!lookup.ok) return sendError(scope.res, 400, "invalid model name");
  const entry = ctx.catalog.get(lookup.key);
  // ShowHandler reports the normalized name ("foo:latest"), unlike generate and chat.
  if (!entry) return sendError(scope.res, 404, `model '${lookup.display}' not found`);
  sendBody(scope.res, 200, "application/json; charset=utf-8", goJson(showResponse(entry)));
}
