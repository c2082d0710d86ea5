import type http from "node:http";
import { normalizeModelName } from "@foreman/shared";
import { isPlainUtf8Body, parseJsonBody } from "../json-body.js";
import { createEmbedderMatcher, pinnedBody } from "./pin-embedder.js";

/**
 * Where an embedding request goes: straight to the target (the embedder's own requests, which run
 * concurrently against the resident embedder), into the queue as a job (any other model, whose load would
 * evict a model the worker counts on), or back to the caller as a 400 (a body whose model cannot be told).
 */
export type EmbedDestination =
  | { to: "target"; body: Buffer }
  | { to: "queue"; model: string; request: Record<string, unknown> }
  | { to: "refused"; error: string };

export interface EmbedRoutingOptions {
  /** FOREMAN_EMBED_MODEL; unset, every embedding request goes to the target. */
  embedModel: string | undefined;
  /** Whether the embedder's requests get `keep_alive: -1` (Ollama's routes; the /v1 route has no such field). */
  pin: boolean;
}

/**
 * The routing decision for one embedding route. The embedder's requests are the hot path and are not
 * parsed: a body that names the embedder in a `"model"` key (a byte search, then a pattern) goes to the
 * target as today. Only a body that does not is parsed, to learn its model: the embedder spelled another
 * way (`nomic-embed-text` for `nomic-embed-text:latest`) still goes to the target, any other model is
 * queued. A compressed or non-UTF-8 body cannot be read cheaply and goes to the target as it did before.
 */
export function createEmbedRouting(
  options: EmbedRoutingOptions,
): (body: Buffer, headers: http.IncomingHttpHeaders) => EmbedDestination {
  const { embedModel, pin } = options;
  if (!embedModel) return (body) => ({ to: "target", body });
  const namesEmbedder = createEmbedderMatcher(embedModel);
  const embedder = normalizeModelName(embedModel);
  return (body, headers) => {
    const text = namesEmbedder(body);
    if (text !== null) return { to: "target", body: pin ? pinnedBody(text, body) : body };
    if (!isPlainUtf8Body(headers)) return { to: "target", body };
    let parsed: unknown;
    try {
      parsed = parseJsonBody(body);
    } catch (err) {
      return { to: "refused", error: (err as Error).message };
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      return { to: "refused", error: "request body must be a JSON object" };
    }
    const request = parsed as Record<string, unknown>;
    const model = request.model;
    if (model !== undefined && typeof model !== "string") return { to: "refused", error: "model must be a string" };
    if (!model) return { to: "refused", error: "model is required" };
    if (normalizeModelName(model) === embedder) return { to: "target", body };
    return { to: "queue", model, request };
  };
}
