import type http from "node:http";
import { ForbiddenError, type ForemanConfig } from "@foreman/shared";
import { Router } from "express";
import type { TargetProxy } from "../proxy/target-proxy.js";
import { readCappedBody } from "../raw-http.js";
import { createEmbedderPinner } from "./pin-embedder.js";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const READ_ONLY = [
  "GET /api/version",
  "GET /api/tags",
  "GET /api/ps",
  "GET /v1/models",
  "POST /api/show",
  "POST /v1/embeddings",
];
const EMBED = ["POST /api/embed", "POST /api/embeddings"];
const MANAGEMENT = ["POST /api/pull", "POST /api/push", "POST /api/create", "POST /api/copy", "DELETE /api/delete"];
const BLOBS_PREFIX = "/api/blobs/";
const MODEL_PREFIX = "/v1/models/";

/**
 * The routes that are Ollama's own answer passed through: model information, embeddings
 * (concurrent, never queued) and, when the operator allows it, model management. They are the proxy's hot
 * path, so they are dispatched on the raw Node request, before Express's router: `dispatch` returns false
 * for anything it does not serve and the caller hands that request on.
 */
export function createPassthroughDispatcher({ config, proxy }: { config: ForemanConfig; proxy: TargetProxy }) {
  const routes = new Map<string, Handler>();
  const plain =
    (route: string): Handler =>
    (req, res) =>
      proxy.forward(req, res, { route });
  const limit = config.bodyLimit;
  // Small JSON bodies are read whole and sent with the headers in one write: piping them costs a second
  // packet and a delayed ACK per request (measured: half the throughput at concurrency 32).
  const buffered =
    (route: string, rewrite: (body: Buffer) => Buffer = (b) => b): Handler =>
    (req, res) =>
      readCappedBody(req, res, limit, (body) => proxy.forward(req, res, { route, body: rewrite(body) }));
  for (const key of READ_ONLY) routes.set(key, key.startsWith("GET") ? plain(key) : buffered(key));
  const pin = createEmbedderPinner(config.embedModel);
  for (const key of EMBED) routes.set(key, buffered(key, pin));
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
    if (req.method === "GET" && path.startsWith(MODEL_PREFIX)) {
      proxy.forward(req, res, { route: "GET /v1/models/:model" });
      return true;
    }
    if (config.management && path.startsWith(BLOBS_PREFIX)) {
      proxy.forward(req, res, { route: `${req.method} /api/blobs/:digest` });
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
