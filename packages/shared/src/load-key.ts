import { normalizeModelName } from "./model-name.js";
import { runnerOptionsKey } from "./runner-options.js";

/**
 * What the target must have loaded to answer a job: the model and the runner options it is loaded with
 * (`runnerOptionsKey`, "" when the request sets none). Two jobs with one load key share a load; two jobs
 * of one model with different runner options cost a load each, because Ollama reloads the model
 * (server/sched.go, needsReload). The drain groups jobs by load key, and a load is counted per load key.
 */
export interface LoadKey {
  /** Normalized (`normalizeModelName`). */
  model: string;
  runnerOptions: string;
}

/**
 * A job's load key. Only Ollama's own API carries runner options (`options`); the OpenAI-compatible
 * routes have no field that reaches them, so their jobs load the model with its defaults.
 */
export function loadKeyOf(model: string, api: "ollama" | "openai", request: unknown): LoadKey {
  const options =
    api === "ollama" && request && typeof request === "object" ? (request as { options?: unknown }).options : undefined;
  return { model: normalizeModelName(model), runnerOptions: runnerOptionsKey(options) };
}

export function sameLoad(a: LoadKey | null | undefined, b: LoadKey | null | undefined): boolean {
  return (
    a != null &&
    b != null &&
    a.runnerOptions === b.runnerOptions &&
    normalizeModelName(a.model) === normalizeModelName(b.model)
  );
}

/** One text per load key (for map keys and logs): the model alone when it sets no runner options. */
export function loadKeyText(key: LoadKey): string {
  const model = normalizeModelName(key.model);
  return key.runnerOptions === "" ? model : `${model} ${key.runnerOptions}`;
}

/**
 * The worker's load keys the target holds, most recently used first: one key (or none) on a target with
 * two model slots, the embedder's and one rotating worker model's; up to one per further slot otherwise.
 * A single key is accepted as it is, so callers that know one model need not wrap it.
 */
export type ResidentKeys = LoadKey | readonly LoadKey[] | null;

export function residentList(resident: ResidentKeys): readonly LoadKey[] {
  if (resident === null) return [];
  return "model" in resident ? [resident] : resident;
}

/**
 * The key the drain groups a job under: its load key, or its model alone when the drain is told to ignore
 * runner options (`FOREMAN_DRAIN_BY_RUNNER_OPTIONS=false`, for comparison or a target that ignores them).
 */
export function drainKeyOf(key: LoadKey, byRunnerOptions: boolean): LoadKey {
  return byRunnerOptions ? key : { model: key.model, runnerOptions: "" };
}
