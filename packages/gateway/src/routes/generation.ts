import { GENERATION_ROUTES, type JobApi, type JobKind, NotFoundError, ValidationError } from "@foreman/shared";
import { Router } from "express";
import { answerAsSyncJob } from "../jobs/sync-job.js";
import { jsonBody, jsonBodyBytes } from "../json-body.js";
import type { JobRouteDeps } from "../route-deps.js";

export type GenerationDeps = JobRouteDeps;

/**
 * Chat and generation are queued, never proxied, so the target runs one generation at a time: the request is committed as a job (so it
 * survives any restart), the worker is woken, and the caller is answered from the job's relay. Only what
 * the gateway must know to queue is checked here; everything else is the target's to judge, and its answer
 * (status and body) reaches the caller unchanged.
 */
export function generationRoutes(deps: GenerationDeps): Router {
  const router = Router();
  const json = jsonBody(deps.config.bodyLimit);
  for (const route of GENERATION_ROUTES) {
    router.post(route.path, json, async (req, res) => {
      const body = validateGenerationBody(req.body, route.kind, route.api);
      const input = { kind: route.kind, api: route.api, model: body.model as string, request: body };
      await answerAsSyncJob(deps, input, jsonBodyBytes(req), res);
    });
  }
  return router;
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
