import { parseThink, RequestFieldError } from "./generation-options.js";
import { DurationError, parseKeepAlive } from "./keep-alive.js";
import type { RequestScope } from "./route-context.js";

export interface CommonGenerationFields {
  model: string;
  keepAliveMs: number | undefined;
  think: boolean | undefined;
}

/**
 * The checks GenerateHandler and ChatHandler (server/routes.go) make alike, in their order: keep_alive,
 * think and top_logprobs; it also records the model and stream flag in the request log. Answers the error
 * through `fail` and returns null when one fails.
 */
export function readCommonGenerationFields(
  body: Record<string, unknown>,
  call: RequestScope["call"],
  fail: (status: number, message: string) => void,
): CommonGenerationFields | null {
  const model = (body.model as string | undefined) ?? "";
  call.entry.model = model;
  if (body.keep_alive !== undefined) call.entry.keepAlive = body.keep_alive;
  call.entry.stream = body.stream !== false;
  let keepAliveMs: number | undefined;
  let think: boolean | undefined;
  try {
    keepAliveMs = parseKeepAlive(body.keep_alive);
    think = parseThink(body.think);
  } catch (error) {
    if (error instanceof DurationError || error instanceof RequestFieldError) {
      fail(400, error.message);
      return null;
    }
    throw error;
  }
  const topLogprobs = (body.top_logprobs as number | undefined) ?? 0;
  if (topLogprobs < 0 || topLogprobs > 20) {
    fail(400, "top_logprobs must be between 0 and 20");
    return null;
  }
  return { model, keepAliveMs, think };
}
