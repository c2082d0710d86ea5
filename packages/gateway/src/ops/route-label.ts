/**
 * The route a request belongs to, as a bounded label for metrics and request logs: never a raw path (job
 * ids and model names would make every request a new series).
 */
const EXACT = new Set([
  "/",
  "/healthz",
  "/readyz",
  "/metrics",
  "/status",
  "/events",
  "/jobs",
  "/api/version",
  "/api/tags",
  "/api/ps",
  "/api/show",
  "/api/chat",
  "/api/generate",
  "/api/embed",
  "/api/embeddings",
  "/api/pull",
  "/api/push",
  "/api/create",
  "/api/copy",
  "/api/delete",
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/models",
]);

export function routeLabel(url: string | undefined): string {
  const raw = url ?? "/";
  const query = raw.indexOf("?");
  const path = query < 0 ? raw : raw.slice(0, query);
  if (EXACT.has(path)) return path;
  if (path.startsWith("/jobs/")) {
    const parts = path.split("/");
    if (parts.length === 3) return "/jobs/:id";
    if (parts.length === 4 && (parts[3] === "cancel" || parts[3] === "stream")) return `/jobs/:id/${parts[3]}`;
    if (parts.length === 5 && parts[3] === "artifacts") return "/jobs/:id/artifacts/:name";
  }
  if (path.startsWith("/api/blobs/")) return "/api/blobs/:digest";
  if (path.startsWith("/v1/models/")) return "/v1/models/:model";
  return "other";
}

/** The pass-through routes whose latency is the embedding proxy's. */
export const EMBED_ROUTES: ReadonlySet<string> = new Set(["/api/embed", "/api/embeddings", "/v1/embeddings"]);
