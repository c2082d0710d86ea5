import type http from "node:http";
import { EMBEDDING_ROUTES, ForbiddenError, type ForemanConfig, type NewJob } from "@foreman/shared";
import { Router } from "express";
import type { TargetProxy } from "../proxy/target-proxy.js";
import { readCappedBody, sendJsonError } from "../raw-http.js";
import { createEmbedRouting } from "./embed-routing.js";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const READ_ONLY = ["GET /api/version", "GET /api/tags", "GET /api/ps", "GET /v1/models", "POST /api/show"];
const MANAGEMENT = ["POST /api/pull", "POST /api/push", "POST /api/create", "POST /api/copy", "DELETE /api/delete"];
const BLOBS_PREFIX = "/api/blobs/";
const MODEL_PREFIX = "/v1/models/";
// What Ollama's `/v1/models/:model` and `/api/blobs/:digest` take: one path segment each (gin's `:name`
// never spans a slash), a model name or a sha256 digest.
const MODEL_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._:-]*$/;
const DIGEST_SEGMENT = /^sha256[:-][0-9a-fA-F]{64}$/;

/**
 * The decoded segment when it is one that the pass-through route may forward, else null. Everything else
 * (a `/`, `\`, `.` or `..` segment, raw or percent-encoded, or any other character) is refused: the target
 * URL may carry a path prefix, and a dot-segment normalized by a proxy in front of the target would reach
 * other paths on that host with the operator's token attached.
 */
export function confinedSegment(raw: string, allowed: RegExp): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  return allowed.test(decoded) ? decoded : null;
}

/** Commits an embedding request for another model than the embedder as a sync job and answers from it. */
export type QueueEmbedding = (res: http.ServerResponse, input: Omit<NewJob, "mode">, bytes: number) => Promise<void>;

/**
 * The routes that are Ollama's own answer passed through: model information, the embedder's embeddings
 * (concurrent, never queued) and, when the operator allows it, model management. They are the proxy's hot
 * path, so they are dispatched on the raw Node request, before Express's router: `dispatch` returns false
 * for anything it does not serve and the caller hands that request on. An embedding request for any other
 * model than FOREMAN_EMBED_MODEL would load it and evict a model the worker counts on, so it is handed to
 * `queueEmbedding` and runs as a job (`createEmbedRouting` decides which).
 */
export function createPassthroughDispatcher({
  config,
  proxy,
  queueEmbedding,
}: {
  config: ForemanConfig;
  proxy: TargetProxy;
  queueEmbedding: QueueEmbedding;
}) {
  const routes = new Map<string, Handler>();
  const plain =
    (route: string): Handler =>
    (req, res) =>
      proxy.forward(req, res, { route });
  const limit = config.bodyLimit;
  // Small JSON bodies are read whole and sent with the headers in one write: piping them costs a second
  // packet and a delayed ACK per request (measured: half the throughput at concurrency 32).
  const buffered =
    (route: string): Handler =>
    (req, res) =>
      readCappedBody(req, res, limit, (body) => proxy.forward(req, res, { route, body }));
  for (const key of READ_ONLY) routes.set(key, key.startsWith("GET") ? plain(key) : buffered(key));
  for (const { path, kind, api } of EMBEDDING_ROUTES) {
    const route = `POST ${path}`;
    const decide = createEmbedRouting({ embedModel: config.embedModel, pin: api === "ollama" });
    routes.set(route, (req, res) =>
      readCappedBody(req, res, limit, (body) => {
        const destination = decide(body, req.headers);
        if (destination.to === "target") return proxy.forward(req, res, { route, body: destination.body });
        if (destination.to === "refused") return sendJsonError(res, 400, destination.error);
        void queueEmbedding(res, { kind, api, model: destination.model, request: destination.request }, body.length);
      }),
    );
  }
  if (config.management) for (const key of MANAGEMENT) routes.set(key, plain(key));

  return function dispatch(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const handler = routes.get(`${req.method} ${path}`);
    if (handler) {
      handler(req, res);
      return true;
    }
    const query = q < 0 ? "" : url.slice(q);
    if (req.method === "GET" && path.startsWith(MODEL_PREFIX)) {
      const model = confinedSegment(path.slice(MODEL_PREFIX.length), MODEL_SEGMENT);
      if (model === null) return refuse(res, "the model name in the path is not a valid model name");
      proxy.forward(req, res, { route: "GET /v1/models/:model", path: MODEL_PREFIX + model + query });
      return true;
    }
    if (config.management && path.startsWith(BLOBS_PREFIX)) {
      const digest = confinedSegment(path.slice(BLOBS_PREFIX.length), DIGEST_SEGMENT);
      if (digest === null) return refuse(res, "the blob digest in the path must be sha256:<64 hex digits>");
      proxy.forward(req, res, { route: `${req.method} /api/blobs/:digest`, path: BLOBS_PREFIX + digest + query });
      return true;
    }
    return false;
  };
}

export type PassthroughDispatcher = ReturnType<typeof createPassthroughDispatcher>;

/** Express routes for what the dispatcher refuses: management while it is disabled. */
export function managementGate(): Router {
  const router = Router();
  const refuse = (req: { path: string }) =>
    new ForbiddenError(
      `${req.path} is model management, which foreman does not pass through by default; set FOREMAN_MANAGEMENT=true on the gateway to enable /api/pull, /api/push, /api/create, /api/copy, /api/delete and /api/blobs`,
    );
  for (const route of MANAGEMENT) {
    const [method, path] = route.split(" ") as [string, string];
    router[method === "DELETE" ? "delete" : "post"](path, (req, _res, next) => next(refuse(req)));
  }
  router.all("/api/blobs/:digest", (req, _res, next) => next(refuse(req)));
  return router;
}

/** Answers a pass-through path that may not be forwarded; returns true (the request is handled). */
function refuse(res: http.ServerResponse, error: string): true {
  sendJsonError(res, 400, error);
  return true;
}
