import { goJson } from "../go-json.js";
import { checkFieldTypes, readJsonBody, sendBody } from "../http-io.js";
import { lookupName } from "../model-catalog.js";
import { parseModelName } from "../model-name.js";
import { openaiChatFormat, openaiCompletionFormat, openaiErrorBody } from "../openai-formats.js";
import type { RequestScope, RouteContext } from "../route-context.js";
import { serveChat } from "./chat.js";
import { serveEmbed } from "./embed.js";
import { serveGenerate } from "./generate.js";

const OPENAI_JSON_TYPE = "application/json";

function fail(scope: RequestScope, status: number, message: string): void {
  sendBody(scope.res, status, OPENAI_JSON_TYPE, openaiErrorBody(status, message));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The Ollama options openai.go derives from the OpenAI sampling fields. */
function optionsFrom(body: Record<string, unknown>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (typeof body.max_tokens === "number") options.num_predict = body.max_tokens;
  if (typeof body.seed === "number") options.seed = body.seed;
  if (typeof body.stop === "string") options.stop = [body.stop];
  else if (Array.isArray(body.stop)) options.stop = body.stop;
  options.temperature = typeof body.temperature === "number" ? body.temperature : 1.0;
  options.top_p = typeof body.top_p === "number" && body.top_p !== 0 ? body.top_p : 1.0;
  return options;
}

function includeUsage(body: Record<string, unknown>): boolean {
  return isRecord(body.stream_options) && body.stream_options.include_usage === true;
}

/** OpenAI message content (a string, or text and image parts) as Ollama messages (FromChatRequest). */
function toOllamaMessages(messages: unknown[]): Array<Record<string, unknown>> | string {
  const out: Array<Record<string, unknown>> = [];
  for (const message of messages) {
    if (!isRecord(message)) return "invalid message format";
    const role = typeof message.role === "string" ? message.role : "";
    const content = message.content;
    if (typeof content === "string" || content === undefined || content === null) {
      out.push({ role, content: content ?? "" });
      continue;
    }
    if (!Array.isArray(content)) return "invalid message format";
    for (const part of content) {
      if (!isRecord(part)) return "invalid message format";
      if (part.type === "text" && typeof part.text === "string") out.push({ role, content: part.text });
      else if (part.type === "image_url") out.push({ role, content: "", images: [""] });
      else return "invalid message format";
    }
  }
  return out;
}

/** reasoning_effort (or reasoning.effort) as a think value; "none" turns thinking off. */
function thinkFrom(body: Record<string, unknown>): boolean | undefined {
  const effort =
    typeof body.reasoning_effort === "string"
      ? body.reasoning_effort
      : isRecord(body.reasoning) && typeof body.reasoning.effort === "string"
        ? body.reasoning.effort
        : undefined;
  if (effort === undefined || effort === "") return undefined;
  return effort !== "none";
}

/** POST /v1/chat/completions: ChatMiddleware in front of the chat handler. */
export async function chatCompletionsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const startedAt = ctx.clock.now();
  const parsed = await readJsonBody(scope.req, "openai.ChatCompletionRequest");
  if (!parsed.ok) return fail(scope, 400, parsed.message);
  const body = parsed.body;
  const typeError = checkFieldTypes(body, "ChatCompletionRequest", {
    model: "string",
    messages: { array: "openai.Message" },
    stream: "bool",
  });
  if (typeError) return fail(scope, 400, typeError);
  const rawMessages = (body.messages as unknown[] | undefined) ?? [];
  if (rawMessages.length === 0) return fail(scope, 400, "[] is too short - 'messages'");
  const messages = toOllamaMessages(rawMessages);
  if (typeof messages === "string") return fail(scope, 400, messages);
  const model = typeof body.model === "string" ? body.model : "";
  const chat: Record<string, unknown> = {
    model,
    messages,
    stream: body.stream === true,
    options: optionsFrom(body),
  };
  const responseFormat = body.response_format;
  if (isRecord(responseFormat)) {
    if (responseFormat.type === "json_object") chat.format = "json";
    else if (responseFormat.type === "json_schema" && isRecord(responseFormat.json_schema)) {
      chat.format = responseFormat.json_schema.schema ?? {};
    }
  }
  if (Array.isArray(body.tools)) chat.tools = body.tools;
  const think = thinkFrom(body);
  if (think !== undefined) chat.think = think;
  await serveChat(chat, scope, ctx, openaiChatFormat(model, includeUsage(body)), startedAt);
}

/** POST /v1/completions: CompletionsMiddleware in front of the generate handler. */
export async function completionsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const startedAt = ctx.clock.now();
  const parsed = await readJsonBody(scope.req, "openai.CompletionRequest");
  if (!parsed.ok) return fail(scope, 400, parsed.message);
  const body = parsed.body;
  const typeError = checkFieldTypes(body, "CompletionRequest", {
    model: "string",
    prompt: "string",
    stream: "bool",
    suffix: "string",
  });
  if (typeError) return fail(scope, 400, typeError);
  const model = typeof body.model === "string" ? body.model : "";
  const generate: Record<string, unknown> = {
    model,
    prompt: typeof body.prompt === "string" ? body.prompt : "",
    stream: body.stream === true,
    options: optionsFrom(body),
  };
  if (typeof body.suffix === "string" && body.suffix !== "") generate.suffix = body.suffix;
  await serveGenerate(generate, scope, ctx, openaiCompletionFormat(model, includeUsage(body)), startedAt);
}

/** float32 little-endian bytes in base64, as openai.go floatsToBase64 encodes them. */
function float32Base64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("base64");
}

/** POST /v1/embeddings: EmbeddingsMiddleware in front of the embed handler. */
export async function embeddingsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const startedAt = ctx.clock.now();
  const parsed = await readJsonBody(scope.req, "openai.EmbedRequest");
  if (!parsed.ok) return fail(scope, 400, parsed.message);
  const body = parsed.body;
  const typeError = checkFieldTypes(body, "EmbedRequest", {
    model: "string",
    dimensions: "int",
    encoding_format: "string",
  });
  if (typeError) return fail(scope, 400, typeError);
  const encoding = typeof body.encoding_format === "string" ? body.encoding_format : "";
  if (encoding !== "" && !["float", "base64"].includes(encoding.toLowerCase())) {
    return fail(
      scope,
      400,
      `Invalid value for 'encoding_format' = ${encoding}. Supported values: ['float', 'base64'].`,
    );
  }
  let input = body.input;
  if (input === "") input = [""];
  if (input === undefined || input === null || (Array.isArray(input) && input.length === 0)) {
    return fail(scope, 400, "invalid input");
  }
  const model = typeof body.model === "string" ? body.model : "";
  const base64 = encoding.toLowerCase() === "base64";
  await serveEmbed({ model, input, dimensions: body.dimensions }, scope, ctx, startedAt, {
    fail: (status, message) => sendBody(scope.res, status, OPENAI_JSON_TYPE, `${openaiErrorBody(status, message)}\n`),
    succeed: (result) => {
      const data = result.embeddings
        .map(
          (embedding, index) =>
            `{"object":"embedding","embedding":${base64 ? `"${float32Base64(embedding.values)}"` : embedding.json},"index":${index}}`,
        )
        .join(",");
      sendBody(
        scope.res,
        200,
        OPENAI_JSON_TYPE,
        `{"object":"list","data":[${data}],"model":${goJson(model)},` +
          `"usage":{"prompt_tokens":${result.promptEvalCount},"total_tokens":${result.promptEvalCount}}}\n`,
      );
    },
  });
}

/** GET /v1/models: the library as an OpenAI model list. */
export function modelsRoute(scope: RequestScope, ctx: RouteContext): void {
  const models = ctx.catalog.list();
  // A nil Go slice: an empty library lists `"data": null`.
  const data =
    models.length === 0
      ? null
      : models.map((m) => ({
          id: m.name,
          object: "model",
          created: Math.floor(m.modifiedAt / 1000),
          owned_by: parseModelName(m.name).namespace,
        }));
  sendBody(scope.res, 200, OPENAI_JSON_TYPE, `${goJson({ object: "list", data })}\n`);
}

/** GET /v1/models/:model */
export function retrieveModelRoute(scope: RequestScope, ctx: RouteContext) {
  const requested = scope.params.model ?? "";
  const lookup = lookupName(requested);
  if (!lookup.ok) return fail(scope, 400, lookup.reason === "invalid" ? "invalid model name" : "model is required");
  const entry = ctx.catalog.get(lookup.key);
  if (!entry)
    return sendBody(
      scope.res,
      404,
      OPENAI_JSON_TYPE,
      `${openaiErrorBody(404, `model '${lookup.display}' not found`)}\n`,
    );
  sendBody(
    scope.res,
    200,
    OPENAI_JSON_TYPE,
    `${goJson({ id: requested, object: "model", created: Math.floor(entry.modifiedAt / 1000), owned_by: lookup.name.namespace })}\n`,
  );
}
