import { runnerOptionsKey } from "@foreman/shared";
import { type CompletionFormat, nativeChatFormat } from "../completion-formats.js";
import { runCompletion } from "../completion-stream.js";
import { planGeneration } from "../generation.js";
import { promptTokenCount, RequestFieldError, readGenerationOptions, wantsJson } from "../generation-options.js";
import { goQuote } from "../go-json.js";
import { formatGoTime } from "../go-time.js";
import { checkFieldTypes, jsonKind, readJsonBody, sendBody } from "../http-io.js";
import { lookupName } from "../model-catalog.js";
import { readCommonGenerationFields } from "../request-common.js";
import { type Lease, SchedulingCancelled } from "../residency.js";
import type { RequestScope, RouteContext } from "../route-context.js";
import { takeDieMidStream, takeSlowFirstToken } from "./generate.js";

const CHAT_FIELDS = {
  model: "string",
  messages: { array: "api.Message" },
  stream: "bool",
  tools: { array: "api.Tool" },
  options: "object",
  truncate: "bool",
  shift: "bool",
  logprobs: "bool",
  top_logprobs: "int",
} as const;

/** POST /api/chat */
export async function chatRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const startedAt = ctx.clock.now();
  const parsed = await readJsonBody(scope.req, "api.ChatRequest");
  const model = parsed.ok && typeof parsed.body.model === "string" ? parsed.body.model : "";
  const format = nativeChatFormat(model);
  if (!parsed.ok) return sendBody(scope.res, 400, format.errorContentType, format.errorBody(400, parsed.message));
  await serveChat(parsed.body, scope, ctx, format, startedAt);
}

/** Checks each message as Go's decoder would, returning its error text. */
function checkMessages(messages: unknown[]): string | undefined {
  for (const message of messages) {
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      return `json: cannot unmarshal ${jsonKind(message)} into Go struct field ChatRequest.messages of type api.Message`;
    }
    const error = checkFieldTypes(message as Record<string, unknown>, "ChatRequest.messages", {
      role: "string",
      content: "string",
      thinking: "string",
      images: { array: "api.ImageData" },
      tool_calls: { array: "api.ToolCall" },
      tool_name: "string",
    });
    if (error) return error;
  }
  return undefined;
}

/**
 * ChatHandler (server/routes.go), in its order of checks, for a decoded body. /v1/chat/completions
 * reuses it with its own wire format, as Ollama's ChatMiddleware does.
 */
export async function serveChat(
  body: Record<string, unknown>,
  scope: RequestScope,
  ctx: RouteContext,
  format: CompletionFormat,
  startedAt: number,
): Promise<void> {
  const { res, call } = scope;
  const fail = (status: number, message: string) =>
    sendBody(res, status, format.errorContentType, format.errorBody(status, message));

  const typeError =
    checkFieldTypes(body, "ChatRequest", CHAT_FIELDS) ?? checkMessages((body.messages as unknown[] | undefined) ?? []);
  if (typeError) return fail(400, typeError);
  const common = readCommonGenerationFields(body, call, fail);
  if (!common) return;
  const { model, keepAliveMs } = common;
  let think = common.think;

  const lookup = lookupName(model);
  if (!lookup.ok) return fail(400, lookup.reason === "invalid" ? "invalid model name" : "model is required");
  const entry = ctx.catalog.get(lookup.key);
  if (!entry) return fail(404, `model '${model}' not found`);

  const messages = (body.messages as Array<Record<string, unknown>> | undefined) ?? [];
  const now = () => ctx.clock.now();
  if (messages.length === 0 && keepAliveMs === 0) {
    ctx.residency.expire(entry);
    const at = now();
    return sendBody(res, 200, format.wholeContentType, format.lifecycle("unload", formatGoTime(at, true), at));
  }

  const capabilities = entry.capabilities;
  if (capabilities.includes("thinking")) {
    think = think ?? true;
  } else if (think) {
    return fail(400, `${goQuote(model)} does not support thinking`);
  }
  if (!capabilities.includes("completion")) return fail(400, `${goQuote(model)} does not support chat`);
  const tools = (body.tools as unknown[] | undefined) ?? [];
  if (tools.length > 0 && !capabilities.includes("tools")) {
    // scheduleRunner's capability error names the model by its full name (Model.Name).
    return fail(400, `${entry.fullName} does not support tools`);
  }

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
    if (messages.length === 0) {
      return sendBody(
        res,
        200,
        format.wholeContentType,
        format.lifecycle("load", formatGoTime(loadedAt, true), loadedAt),
      );
    }
    const rendered = messages.map((m) => `${String(m.role ?? "")}: ${String(m.content ?? "")}`).join("\n");
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
      promptEvalCount: promptTokenCount(rendered, 4 * messages.length + 2),
      promptTokensPerSecond: entry.promptTokensPerSecond,
      tokensPerSecond: entry.tokensPerSecond,
      firstTokenDelayMs: takeSlowFirstToken(scope, ctx),
      dieAfterChunks: stream ? takeDieMidStream(scope, ctx) : undefined,
    });
  } finally {
    lease.release();
  }
}
