import { InvalidArgumentError, type LanguageModelV4CallOptions, type SharedV4Warning } from "@ai-sdk/provider";
import type { ChatJobRequest, Options, ThinkValue, Tool, WebhookRequest } from "@foreman/client";
import { toOllamaMessages } from "./convert-prompt.js";

/** foreman's own options of a call: `providerOptions: { foreman: { … } }`. */
export interface ForemanProviderOptions {
  /** A small JSON object stored with the job and echoed back on it (and on its webhook events). */
  metadata?: Record<string, unknown>;
  /**
   * The job's Idempotency-Key: a call repeated with the same key (a retry after a crash, a second request
   * for the same work) follows the one job instead of generating again. A random key otherwise.
   */
  idempotencyKey?: string;
  /** Webhook events of the job: `{ url, secret?, events? }`. */
  webhook?: WebhookRequest;
  /** Ollama's `keep_alive` for the model: "5m", seconds, 0 to unload after, negative to keep loaded. */
  keepAlive?: string | number;
  /** Ollama's `think`, when the AI SDK's `reasoning` setting is not enough. */
  think?: ThinkValue;
  /** Further Ollama `options` (`num_ctx`, `repeat_penalty`, …), merged over the mapped settings. */
  options?: Record<string, unknown>;
}

export interface JobCall {
  /** The chat job's fields, everything but `model`. */
  request: Omit<ChatJobRequest, "model">;
  idempotencyKey: string | undefined;
  warnings: SharedV4Warning[];
}

/**
 * The AI SDK's call options as a foreman chat job, mapped as Ollama maps them: sampling settings into
 * `options` (`num_predict`, `top_k`, `stop`, …), tools into Ollama's `tools`, a JSON response format into
 * `format` (the schema itself when there is one, Ollama's structured outputs), and `reasoning` into `think`.
 * What Ollama cannot honour becomes a warning, not a silent drop.
 */
export function toJobCall(call: LanguageModelV4CallOptions): JobCall {
  const warnings: SharedV4Warning[] = [];
  const foreman = readProviderOptions(call.providerOptions?.foreman);

  const options: Options = {};
  if (call.maxOutputTokens !== undefined) options.num_predict = call.maxOutputTokens;
  if (call.temperature !== undefined) options.temperature = call.temperature;
  if (call.topP !== undefined) options.top_p = call.topP;
  if (call.topK !== undefined) options.top_k = call.topK;
  if (call.seed !== undefined) options.seed = call.seed;
  if (call.stopSequences !== undefined && call.stopSequences.length > 0) options.stop = call.stopSequences;
  if (call.presencePenalty !== undefined) options.presence_penalty = call.presencePenalty;
  if (call.frequencyPenalty !== undefined) options.frequency_penalty = call.frequencyPenalty;
  Object.assign(options, foreman.options);

  const request: Omit<ChatJobRequest, "model"> = { messages: toOllamaMessages(call.prompt) };
  if (Object.keys(options).length > 0) request.options = options;

  if (call.responseFormat?.type === "json") request.format = call.responseFormat.schema ?? "json";

  const tools = toOllamaTools(call, warnings);
  if (tools.length > 0) request.tools = tools;

  const think = foreman.think ?? thinkFor(call.reasoning, warnings);
  if (think !== undefined) request.think = think;
  if (foreman.keepAlive !== undefined) request.keep_alive = foreman.keepAlive;
  if (foreman.metadata !== undefined) request.metadata = foreman.metadata;
  if (foreman.webhook !== undefined) request.webhook = foreman.webhook;
  return { request, idempotencyKey: foreman.idempotencyKey, warnings };
}

function toOllamaTools(call: LanguageModelV4CallOptions, warnings: SharedV4Warning[]): Tool[] {
  const choice = call.toolChoice;
  if (!call.tools || call.tools.length === 0 || choice?.type === "none") return [];
  const tools: Tool[] = [];
  for (const tool of call.tools) {
    if (tool.type !== "function") {
      warnings.push({ type: "unsupported", feature: `provider tool ${tool.id}` });
      continue;
    }
    if (choice?.type === "tool" && tool.name !== choice.toolName) continue;
    tools.push({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        parameters: tool.inputSchema as Tool["function"]["parameters"],
      },
    });
  }
  // Ollama has no tool_choice: a required or named tool is offered, not forced.
  if (choice?.type === "required" || choice?.type === "tool") {
    warnings.push({
      type: "compatibility",
      feature: `toolChoice ${choice.type}`,
      details: "Ollama cannot force a tool call; the tools are offered and the model decides",
    });
  }
  return tools;
}

function thinkFor(
  reasoning: LanguageModelV4CallOptions["reasoning"],
  warnings: SharedV4Warning[],
): ThinkValue | undefined {
  switch (reasoning) {
    case undefined:
    case "provider-default":
      return undefined;
    case "none":
      return false;
    case "minimal":
    case "low":
      return "low";
    case "medium":
      return "medium";
    default:
      if (reasoning !== "high") {
        warnings.push({ type: "compatibility", feature: `reasoning ${reasoning}`, details: "sent as think: high" });
      }
      return "high";
  }
}

function readProviderOptions(value: unknown): ForemanProviderOptions {
  if (value === undefined) return {};
  const options = object(value, "providerOptions.foreman");
  const { metadata, idempotencyKey, webhook, keepAlive, think } = options;
  if (metadata !== undefined) object(metadata, "providerOptions.foreman.metadata");
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== "string" || idempotencyKey === "")) {
    throw invalid("providerOptions.foreman.idempotencyKey", "must be a non-empty string");
  }
  if (webhook !== undefined && typeof object(webhook, "providerOptions.foreman.webhook").url !== "string") {
    throw invalid("providerOptions.foreman.webhook", "must be { url, secret?, events? }");
  }
  if (keepAlive !== undefined && typeof keepAlive !== "string" && typeof keepAlive !== "number") {
    throw invalid("providerOptions.foreman.keepAlive", 'must be a duration such as "5m" or a number of seconds');
  }
  if (think !== undefined && typeof think !== "boolean" && !["low", "medium", "high"].includes(think as string)) {
    throw invalid("providerOptions.foreman.think", 'must be true, false, "low", "medium" or "high"');
  }
  if (options.options !== undefined) object(options.options, "providerOptions.foreman.options");
  return options as ForemanProviderOptions;
}

function object(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(name, "must be an object");
  return value as Record<string, unknown>;
}

function invalid(argument: string, what: string): InvalidArgumentError {
  return new InvalidArgumentError({ argument, message: `${argument} ${what}` });
}
