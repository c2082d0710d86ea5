import { ForbiddenError, type ForemanConfig } from "@foreman/shared";
import express, { Router } from "express";
import type { TargetProxy } from "../proxy/target-proxy.js";
import { pinEmbedder } from "./pin-embedder.js";

const MANAGEMENT_ROUTES: Array<[method: "post" | "delete" | "head" | "all", path: string]> = [
  ["post", "/api/pull"],
  ["post", "/api/push"],
  ["post", "/api/create"],
  ["post", "/api/copy"],
  ["delete", "/api/delete"],
  ["all", "/api/blobs/:digest"],
];

/**
 * Routes that are Ollama's own answer passed through (SPEC §5.1): read-only model information,
 * embeddings (concurrent, never queued) and, when the operator allows it, model management.
 */
export function passthroughRoutes({ config, proxy }: { config: ForemanConfig; proxy: TargetProxy }): Router {
  const router = Router();
  for (const path of ["/api/version", "/api/tags", "/api/ps", "/v1/models", "/v1/models/:model"]) {
    router.get(path, (req, res) => proxy.forward(req, res, { route: path }));
  }
  router.post("/api/show", (req, res) => proxy.forward(req, res, { route: "/api/show" }));

  // Embedding bodies are read whole (they are small) so the embedder's keep_alive can be pinned.
  const raw = express.raw({ type: () => true, limit: config.bodyLimit });
  for (const path of ["/api/embed", "/api/embeddings"]) {
    router.post(path, raw, (req, res) => {
      proxy.forward(req, res, { route: path, body: pinEmbedder(req.body as Buffer, config.embedModel) });
    });
  }
  router.post("/v1/embeddings", (req, res) => proxy.forward(req, res, { route: "/v1/embeddings" }));

  for (const [method, path] of MANAGEMENT_ROUTES) {
    router[method](path, (req, res, next) => {
      if (!config.management) {
        next(
          new ForbiddenError(
            `${req.path} is model management, which foreman does not pass through by default; set FOREMAN_MANAGEMENT=true on the gateway to enable /api/pull, /api/push, /api/create, /api/copy, /api/delete and /api/blobs`,
          ),
        );
        return;
      }
      proxy.forward(req, res, { route: path });
    });
  }
  return router;
}
