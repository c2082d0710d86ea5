import type http from "node:http";
import { GENERATION_ROUTES, type JobApi, type JobKind, NotFoundError, ValidationError } from "@foreman/shared";
import { Router } from "express";
import { answerAsSyncJob } from "../jobs/sync-job.js";
import { isPlainUtf8Body, jsonBody, jsonBodyBytes, parseJsonBody } from "../json-body.js";
import { answerRawError } from "../middleware/errors.js";
import { readCappedBody } from "../raw-http.js";
import type { JobRouteDeps } from "../route-deps.js";

export type GenerationDeps = JobRouteDeps;

type GenerationRoute = (typeof GENERATION_ROUTES)[number];

/**
 * Chat and generation are queued, never proxied, so the target runs one generation at a time: the request is committed as a job (so it
 * survives any restart), the worker is woken, and the caller is answered from the job's relay. Only what
 * the gateway must know to queue is checked here; everything else is the target's to judge, and its answer
 * (status and body) reaches the caller unchanged.
 */
async function generate(
  deps: GenerationDeps,
  route: GenerationRoute,
  body: unknown,
  bytes: number,
  res: http.ServerResponse,
): Promise<void> {
  const request = validateGenerationBody(body, route.kind, route.api);
  const input = { kind: route.kind, api: route.api, model: request.model as string, request };
  await answerAsSyncJob(deps, input, bytes, res);
}

export function generationRoutes(deps: GenerationDeps): Router {
  const router = Router();
  const json = jsonBody(deps.config.bodyLimit);
  for (const route of GENERATION_ROUTES) {
    router.post(route.path, json, (req, res) => generate(deps, route, req.body, jsonBodyBytes(req), res));
  }
  return router;
}

const ROUTE_BY_PATH = new Map(GENERATION_ROUTES.map((route) => [route.path, route]));

/**
 * The generation routes on the raw Node request, for a plain UTF-8 body on the exact path: Express's router
 * and body parser sit on the way to the caller's first token (arrival to handler measured 0.5–0.7 ms at the
 * median through Express, 0.2 ms without it, on a loaded two-core machine). Any other request (another
 * spelling of the path, a compressed body or another charset) is left to the Express routes above, which
 * answer it the same way. Returns false when it does not take the request.
 */
export function createFastGeneration(deps: GenerationDeps) {
  async function run(route: GenerationRoute, res: http.ServerResponse, text: Buffer): Promise<void> {
    try {
      await generate(deps, route, parseJsonBody(text), text.length, res);
    } catch (err) {
      answerRawError(res, err, deps.logger, route.path);
    }
  }
  return (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    if (req.method !== "POST" || !isPlainUtf8Body(req.headers)) return false;
    const route = ROUTE_BY_PATH.get(req.url ?? "");
    if (!route) return false;
    readCappedBody(req, res, deps.config.bodyLimit, (body) => void run(route, res, body));
    return true;
  };
}

/** The checks Ollama makes before it looks at the model, with its messages (server/routes.go). */
export function validateGenerationBody(body: unknown, kind: JobKind, api: JobApi): Record<string, unknown> {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new ValidationError("request body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (b.model !== undefined && typeof b.model !== "string") throw new ValidationError("model must be a string");
  if (!b.model) {
    // Ollama's generate handler answers a missing model with its not-found error, chat with a 400.
    if (api === "ollama" && kind === "generate") throw new NotFoundError("model '' not found");
    throw new ValidationError("model is required");
  }
  if (b.stream !== undefined && typeof b.stream !== "boolean") throw new ValidationError("stream must be a boolean");
  if (kind === "chat" && b.messages !== undefined && !Array.isArray(b.messages)) {
    throw new ValidationError("messages must be an array");
  }
  if (api === "openai" && kind === "chat" && !Array.isArray(b.messages))
    throw new ValidationError("messages is required");
  if (kind === "generate" && b.prompt !== undefined && typeof b.prompt !== "string") {
    throw new ValidationError("prompt must be a string");
  }
  return b;
}
