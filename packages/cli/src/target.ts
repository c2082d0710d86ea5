import { parseNdjson } from "@foreman/client";
import type { ListResponse, ProcessResponse, ProgressResponse, ShowResponse, VersionResponse } from "@foreman/shared";
import { readTargetEnv, type TargetEnv } from "./env.js";
import { type Endpoint, openStream, requestJson } from "./http.js";
import type { CliIo } from "./io.js";

/** A load may take minutes on a real host (a large model read from disk into VRAM). */
const LOAD_TIMEOUT_MS = 15 * 60_000;

export const TARGET_REACH_HINT =
  "Is Ollama running there, and listening on an address this machine can reach (OLLAMA_HOST=0.0.0.0:11434 on the Ollama host)? FOREMAN_OLLAMA_URL is its address.";

/**
 * The Ollama target, reached directly (not through foreman) with the worker's own settings:
 * FOREMAN_OLLAMA_URL and FOREMAN_OLLAMA_TOKEN.
 */
export function connectTarget(io: CliIo) {
  const env: TargetEnv = readTargetEnv(io.env);
  const endpoint: Endpoint = {
    label: "the target",
    baseUrl: env.baseUrl,
    token: env.token,
    reachHint: TARGET_REACH_HINT,
    authHint: env.token
      ? "FOREMAN_OLLAMA_TOKEN is not the token the target expects"
      : "the target wants a token: set FOREMAN_OLLAMA_TOKEN",
  };
  return {
    env,
    endpoint,
    version: () => requestJson<VersionResponse>(endpoint, { path: "/api/version" }),
    tags: () => requestJson<ListResponse>(endpoint, { path: "/api/tags" }),
    ps: () => requestJson<ProcessResponse>(endpoint, { path: "/api/ps" }),
    show: (model: string) =>
      requestJson<ShowResponse>(endpoint, { method: "POST", path: "/api/show", body: { model } }),
    /** An embed with no input loads the model; keep_alive -1 pins it, as the worker pins the embedder. */
    loadEmbedder: (model: string) =>
      requestJson<unknown>(endpoint, {
        method: "POST",
        path: "/api/embed",
        body: { model, input: [], keep_alive: -1 },
        timeoutMs: LOAD_TIMEOUT_MS,
      }),
    /** A generate with no prompt loads the model (`done_reason: "load"`). */
    load: (model: string) =>
      requestJson<unknown>(endpoint, {
        method: "POST",
        path: "/api/generate",
        body: { model, stream: false },
        timeoutMs: LOAD_TIMEOUT_MS,
      }),
    /** keep_alive 0 with no prompt unloads the model, as `ollama stop` does. */
    unload: (model: string) =>
      requestJson<unknown>(endpoint, {
        method: "POST",
        path: "/api/generate",
        body: { model, keep_alive: 0, stream: false },
      }),
    /** `POST /api/pull`, streamed: Ollama's progress lines, the last `{"status":"success"}` or `{"error"}`. */
    async *pull(model: string, signal?: AbortSignal): AsyncGenerator<ProgressResponse | { error: string }> {
      const body = await openStream(
        endpoint,
        { method: "POST", path: "/api/pull", body: { model, stream: true }, signal },
        "application/x-ndjson",
      );
      for await (const line of parseNdjson(body)) yield line as ProgressResponse | { error: string };
    },
  };
}

export type Target = ReturnType<typeof connectTarget>;
