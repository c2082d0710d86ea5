/**
 * The request options that decide how Ollama loads a model (its `api.Runner` options). Two requests for
 * one model that differ in any of them cannot share the loaded model: Ollama unloads and loads it again
 * (server/sched.go, needsReload). Other options (temperature, seed, num_predict…) are per request.
 */
export const RUNNER_OPTION_KEYS = ["num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"] as const;

/**
 * A stable text for a request's runner options: "" when it sets none, else `key=value` pairs in a fixed
 * order. An option left out means "the model's default", which may equal a value another request names;
 * only the target knows the default, so the two are treated as different (at worst one load too many is
 * planned for, never one too few).
 */
export function runnerOptionsKey(options: unknown): string {
  if (!options || typeof options !== "object" || Array.isArray(options)) return "";
  const given = options as Record<string, unknown>;
  return RUNNER_OPTION_KEYS.filter((k) => given[k] !== undefined && given[k] !== null)
    .map((k) => `${k}=${JSON.stringify(given[k])}`)
    .join(",");
}
