import { Router } from "../router.js";
import { chatRoute } from "./chat.js";
import {
  clearFaultsRoute,
  faultsRoute,
  listModelsRoute,
  loadedRoute,
  resetRoute,
  setFaultsRoute,
  setModelsRoute,
  statsRoute,
} from "./control.js";
import { embeddingsRoute, embedRoute } from "./embed.js";
import { generateRoute } from "./generate.js";
import {
  copyRoute,
  createBlobRoute,
  createRoute,
  deleteRoute,
  headBlobRoute,
  pullRoute,
  pushRoute,
} from "./management.js";
import { psRoute, showRoute, tagsRoute, versionRoute } from "./models.js";
import {
  chatCompletionsRoute,
  completionsRoute,
  modelsRoute,
  embeddingsRoute as openaiEmbeddingsRoute,
  retrieveModelRoute,
} from "./openai.js";
import { rootRoute } from "./root.js";

/** Ollama's routes, as server/routes.go GenerateRoutes registers them. */
export function ollamaRoutes(): Router {
  return new Router()
    .add("HEAD", "/", rootRoute)
    .add("GET", "/", rootRoute)
    .add("HEAD", "/api/version", versionRoute)
    .add("GET", "/api/version", versionRoute)
    .add("POST", "/api/pull", pullRoute)
    .add("POST", "/api/push", pushRoute)
    .add("HEAD", "/api/tags", tagsRoute)
    .add("GET", "/api/tags", tagsRoute)
    .add("POST", "/api/show", showRoute)
    .add("DELETE", "/api/delete", deleteRoute)
    .add("POST", "/api/create", createRoute)
    .add("POST", "/api/blobs/:digest", createBlobRoute)
    .add("HEAD", "/api/blobs/:digest", headBlobRoute)
    .add("POST", "/api/copy", copyRoute)
    .add("GET", "/api/ps", psRoute)
    .add("POST", "/api/generate", generateRoute)
    .add("POST", "/api/chat", chatRoute)
    .add("POST", "/api/embed", embedRoute)
    .add("POST", "/api/embeddings", embeddingsRoute)
    .add("POST", "/v1/chat/completions", chatCompletionsRoute)
    .add("POST", "/v1/completions", completionsRoute)
    .add("POST", "/v1/embeddings", openaiEmbeddingsRoute)
    .add("GET", "/v1/models", modelsRoute)
    .add("GET", "/v1/models/:model", retrieveModelRoute);
}

/** The simulator's control routes (never behind the token, never faulted, never counted). */
export function controlRoutes(): Router {
  return new Router()
    .add("GET", "/_sim/stats", statsRoute)
    .add("POST", "/_sim/reset", resetRoute)
    .add("GET", "/_sim/loaded", loadedRoute)
    .add("GET", "/_sim/faults", faultsRoute)
    .add("POST", "/_sim/faults", setFaultsRoute)
    .add("DELETE", "/_sim/faults", clearFaultsRoute)
    .add("GET", "/_sim/models", listModelsRoute)
    .add("PUT", "/_sim/models", setModelsRoute);
}
