import { runnerOptionsKey } from "@foreman/shared";
import { type CompletionFormat, nativeGenerateFormat } from "../completion-formats.js";
import { runCompletion } from "../completion-stream.js";
import { planGeneration } from "../generation.js";
import { promptTokenCount, RequestFieldError, readGenerationOptions, wantsJson } from "../generation-options.js";
import { goQuote } from "../go-json.js";
import { formatGoTime } from "../go-time.js";
import { checkFieldTypes, readJsonBody, sendBody } from "../http-io.js";
import { lookupName } from "../model-catalog.js";
import { readCommonGenerationFields } from "../request-common.js";
import { type Lease, SchedulingCancelled } from "../residency.js";
import type { RequestScope, RouteContext } from "../route-context.js";

const GENERATE_FIELDS = {
  model: "string",
  prompt: "string",
  suffix: "string",
  system: "string",
  template: "string",
  context: { array: "int" },
  stream: "bool",
  raw: "bool",
  images: { array: "api.ImageData" },
  options: "object",
  truncate: "bool",
  shift: "bool",
  logprobs: "bool",
  top_logprobs: "int",
} as const;

/** POST /api/generate */
export async function generateRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const startedAt = ctx.clock.now();
  const parsed = await readJsonBody(scope.req, "api.GenerateRequest");
  const model = parsed.ok && typeof parsed.body.model === "string" ? parsed.body.model : "";
  const format = nativeGenerateFormat(model);
  if (!parsed.ok) return sendBody(scope.res, 400, format.errorContentType, format.errorBody(400, parsed.message));
  await serveGenerate(parsed.body, scope, ctx, format, startedAt);
}

/**
 * GenerateHandler (server/routes.go), in its order of checks, for a decoded body. /v1/completions
 * reuses it with its own wire format, as Ollama's CompletionsMiddleware does.
 */
export async function serveGenerate(
  body: Record<string, unknown>,
  scope: RequestScope,
  ctx: RouteContext,
  format: CompletionFormat,
  startedAt: number,
): Promise<void> {
  const { res, call } = scope;
  const fail = (status: number, message: string) =>
    sendBody(res, status, format.errorContentType, format.errorBody(status, message));

  const typeError = checkFieldTypes(body, "GenerateRequest", GENERATE_FIELDS);
  if (typeError) return fail(400, typeError);
  const common = readCommonGenerationFields(body, call, fail);
  if (!common) return;
  const { model, keepAliveMs } = common;
  let think = common.think;

  // An unparseable name is a 404 here, not a 400 (writeModelRefParseError's fallback).
  const lookup = lookupName(model);
  if (!lookup.ok) {
    return lookup.reason === "invalid" ? fail(400, "invalid model name") : fail(404, `model '${model}' not found`);
  }
  const entry = ctx.catalog.get(lookup.key);
  if (!entry) return fail(404, `model '${model}' not found`);

  const prompt = (body.prompt as string | undefined) ?? "";
  const now = () => ctx.clock.now();
  if (prompt === "" && keepAliveMs === 0) {
    ctx.residency.expire(entry);
    const at = now();
    return sendBody(res, 200, format.wholeContentType, format.lifecycle("unload", formatGoTime(at, true), at));
  }

  const system = (body.system as string | undefined) ?? "";
  const raw = body.raw === true;
  if (
    raw &&
    ((body.template as string | undefined) || system || (Array.isArray(body.context) && body.context.length > 0))
  ) {
    return fail(400, "raw mode does not support template, system, or context");
  }

  // Thinking-capable models think unless told not to; others refuse an explicit request to.
  const capabilities = entry.capabilities;
  if (capabilities.includes("thinking")) {
    think = think ?? true;
  } else if (think) {
    return fail(400, `${goQuote(model)} does not support thinking`);
  }
  if (!capabilities.includes("completion")) return fail(400, `${goQuote(model)} does not support generate`);

  let options: ReturnType<typeof readGenerationOptions>;
  try {
    options = readGenerationOptions(body.options);
  } catch (error) {
    if (error instanceof RequestFieldError) return fail(error.status, error.message);
    throw error;
  }

  let lease: Lease;
  try {
    lease = await ctx.residency.acquire(entry, keepAliveMs, scope.signal, runnerOptionsKey(body.options));
  } catch (error) {
    if (error instanceof SchedulingCancelled) return;
    throw error;
  }
  try {
    const loadedAt = now();
    if (prompt === "") {
      return sendBody(
        res,
        200,
        format.wholeContentType,
        format.lifecycle("load", formatGoTime(loadedAt, true), loadedAt),
      );
    }
    const suffix = (body.suffix as string | undefined) ?? "";
    const rendered = `${system}\n${prompt}${suffix}`;
    const plan = planGeneration({
      model: entry.name,
      prompt: rendered,
      seed: options.seed,
      numPredict: options.numPredict,
      think: think === true,
      json: wantsJson(body.format),
      defaultTokens: ctx.config.defaultTokens,
    });
    const stream = body.stream !== false;
    await runCompletion({
      res,
      call,
      format,
      plan,
      stream,
      clock: ctx.clock,
      startedAt,
      loadedAt,
      promptEvalCount: promptTokenCount(rendered, raw ? 0 : 8),
      promptTokensPerSecond: entry.promptTokensPerSecond,
      tokensPerSecond: entry.tokensPerSecond,
      firstTokenDelayMs: takeSlowFirstToken(scope, ctx),
      dieAfterChunks: stream ? takeDieMidStream(scope, ctx) : undefined,
      contextSeed: raw ? undefined : rendered,
    });
  } finally {
    lease.release();
  }
}

/** The slow-first-token fault, recorded on the request when it applies. */
export function takeSlowFirstToken(scope: RequestScope, ctx: RouteContext): number {
  const ms = ctx.faults.takeSlowFirstToken(scope.path);
  if (ms > 0) {
    scope.call.entry.fault = "slow-first-token";
    ctx.stats.recordFault("slowedFirstToken");
  }
  return ms;
}

/** The die-mid-stream fault, recorded on the request when it applies. */
export function takeDieMidStream(scope: RequestScope, ctx: RouteContext): number | undefined {
  const afterChunks = ctx.faults.takeDieMidStream(scope.path);
  if (afterChunks !== undefined) {
    scope.call.entry.fault = "die";
    ctx.stats.recordFault("diedMidStream");
  }
  return afterChunks;
}
