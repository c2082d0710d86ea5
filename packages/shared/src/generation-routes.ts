import type { JobApi, JobKind } from "./store/jobs.js";

/**
 * The routes whose requests become jobs, and the one map between a route and a job's kind and API: the
 * gateway mounts these paths, and the worker sends each job to the same path on the target.
 */
export const GENERATION_ROUTES: ReadonlyArray<{ path: string; kind: JobKind; api: JobApi }> = [
  { path: "/api/chat", kind: "chat", api: "ollama" },
  { path: "/api/generate", kind: "generate", api: "ollama" },
  { path: "/v1/chat/completions", kind: "chat", api: "openai" },
  { path: "/v1/completions", kind: "generate", api: "openai" },
];

/**
 * The embedding routes. A request for the embedder (FOREMAN_EMBED_MODEL) is passed through to the target;
 * one for any other model becomes a job of this kind and API, sent by the worker to the same path.
 */
export const EMBEDDING_ROUTES: ReadonlyArray<{ path: string; kind: JobKind; api: JobApi }> = [
  { path: "/api/embed", kind: "embed", api: "ollama" },
  { path: "/api/embeddings", kind: "embeddings", api: "ollama" },
  { path: "/v1/embeddings", kind: "embed", api: "openai" },
];

const JOB_ROUTES = [...GENERATION_ROUTES, ...EMBEDDING_ROUTES];

/** Whether a job of this kind asks for embeddings (answered in one JSON body, never streamed). */
export function isEmbeddingKind(kind: JobKind): boolean {
  return kind === "embed" || kind === "embeddings";
}

/** The target path a job of this kind and API is sent to. */
export function targetPathFor(job: { kind: JobKind; api: JobApi }): string {
  const route = JOB_ROUTES.find((r) => r.kind === job.kind && r.api === job.api);
  if (!route) throw new Error(`no target route for a ${job.api} ${job.kind} job`);
  return route.path;
}
