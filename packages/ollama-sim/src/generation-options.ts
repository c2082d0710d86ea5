/**
 * The request fields that steer a generation, validated with Ollama's messages: `think`
 * (api.ThinkValue.UnmarshalJSON), `options` (api.Options.FromMap) and `format`.
 */

export class RequestFieldError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const THINK_LEVELS = new Set(["high", "medium", "low", "max"]);

/** The `think` field: undefined when absent, else whether thinking is on. Throws a 400. */
export function parseThink(value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") {
    if (!THINK_LEVELS.has(value)) {
      throw new RequestFieldError(
        `invalid think value: ${JSON.stringify(value)} (must be "high", "medium", "low", "max", true, or false)`,
        400,
      );
    }
    return true;
  }
  throw new RequestFieldError(
    'think must be a boolean or string ("high", "medium", "low", "max", true, or false)',
    400,
  );
}

export interface GenerationOptions {
  seed: number | undefined;
  numPredict: number | undefined;
}

/**
 * Reads options.seed and options.num_predict. A wrongly typed value fails as api.Options.FromMap
 * does, which Ollama reports from scheduleRunner as a 500.
 */
export function readGenerationOptions(options: unknown): GenerationOptions {
  const result: GenerationOptions = { seed: undefined, numPredict: undefined };
  if (typeof options !== "object" || options === null) return result;
  const record = options as Record<string, unknown>;
  for (const [key, field] of [
    ["seed", "seed"],
    ["num_predict", "numPredict"],
  ] as const) {
    const value = record[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number") throw new RequestFieldError(`option "${key}" must be of type integer`, 500);
    result[field] = Math.trunc(value);
  }
  return result;
}

/** `format: "json"` or a JSON schema object asks for JSON output. */
export function wantsJson(format: unknown): boolean {
  if (typeof format === "string") return format !== "";
  return typeof format === "object" && format !== null;
}

/** The simulated tokenizer's count for a rendered prompt, template tokens included. */
export function promptTokenCount(text: string, templateTokens: number): number {
  return Math.max(1, Math.ceil(text.length / 4) + templateTokens);
}
