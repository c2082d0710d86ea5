import type { CompletionFormat, FinalInfo } from "./completion-formats.js";
import { tokenJson } from "./generation.js";
import { goJson } from "./go-json.js";

const FINGERPRINT = "fp_ollama";
const SSE_TYPE = "text/event-stream";
// The /v1 writers set a bare "application/json" over gin's "; charset=utf-8" (middleware/openai.go).
const OPENAI_JSON_TYPE = "application/json";

/** openai.NewError: the error type follows the status. */
export function openaiErrorBody(status: number, message: string): string {
  const type = status === 400 ? "invalid_request_error" : status === 404 ? "not_found_error" : "api_error";
  return goJson({ error: { message, type, param: null, code: null } });
}

/** Ollama's ids are a prefix and a random number below 999 (middleware/openai.go). */
function responseId(prefix: string): string {
  return `${prefix}-${Math.floor(Math.random() * 999)}`;
}

function usageJson(final: FinalInfo): string {
  return (
    `{"prompt_tokens":${final.promptEvalCount},"completion_tokens":${final.evalCount},` +
    `"total_tokens":${final.promptEvalCount + final.evalCount}}`
  );
}

/**
 * /v1/chat/completions (openai.go ToChatCompletion, ToStreamChunks, FinishChunk): SSE events, the
 * first delta carrying the role, then a finish event with an empty delta, an optional usage
 * event, and `data: [DONE]`.
 */
export function openaiChatFormat(model: string, includeUsage: boolean): CompletionFormat {
  const id = responseId("chatcmpl");
  const modelJson = goJson(model);
  let created: number | undefined;
  let firstSent = false;
  const head = (createdAtMs: number) => {
    // OpenAI stamps one `created` on every chunk of a stream: the first response's.
    created ??= Math.floor(createdAtMs / 1000);
    return `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${modelJson},"system_fingerprint":"${FINGERPRINT}"`;
  };
  return {
    streamContentType: SSE_TYPE,
    errorContentType: OPENAI_JSON_TYPE,
    wholeContentType: OPENAI_JSON_TYPE,
    tokenChunks(plan, from, to, _createdAt, createdAtMs) {
      const prefix = head(createdAtMs);
      let out = "";
      for (let i = from; i < to; i++) {
        const role = firstSent ? "" : '"role":"assistant",';
        firstSent = true;
        const token = tokenJson(plan.tokens[i] as number);
        const delta = i < plan.thinkingCount ? `${role}"content":"","reasoning":${token}` : `${role}"content":${token}`;
        out += `data: ${prefix},"choices":[{"index":0,"delta":{${delta}},"finish_reason":null}]}\n\n`;
      }
      return out;
    },
    finalChunks(final) {
      const prefix = head(final.createdAtMs);
      let out = "";
      if (!firstSent) {
        // A wholly empty completion still opens with a role chunk.
        out += `data: ${prefix},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`;
        firstSent = true;
      }
      const reason = goJson(final.doneReason || "stop");
      out += `data: ${prefix},"choices":[{"index":0,"delta":{},"finish_reason":${reason}}]}\n\n`;
      if (includeUsage) out += `data: ${prefix},"choices":[],"usage":${usageJson(final)}}\n\n`;
      return `${out}data: [DONE]\n\n`;
    },
    whole(final) {
      const reasoning = final.thinking === "" ? "" : `,"reasoning":${goJson(final.thinking)}`;
      return (
        `{"id":"${id}","object":"chat.completion","created":${Math.floor(final.createdAtMs / 1000)},"model":${modelJson},` +
        `"system_fingerprint":"${FINGERPRINT}","choices":[{"index":0,"message":{"role":"assistant",` +
        `"content":${goJson(final.content)}${reasoning}},"finish_reason":${goJson(final.doneReason || "stop")}}],` +
        `"usage":${usageJson(final)}}\n`
      );
    },
    errorBody: (status, message) => `${openaiErrorBody(status, message)}\n`,
    lifecycle(doneReason, _createdAt, createdAtMs) {
      return (
        `{"id":"${id}","object":"chat.completion","created":${Math.floor(createdAtMs / 1000)},"model":${modelJson},` +
        `"system_fingerprint":"${FINGERPRINT}","choices":[{"index":0,"message":{"role":"assistant","content":""},` +
        `"finish_reason":"${doneReason}"}],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}\n`
      );
    },
  };
}

/**
 * /v1/completions (openai.go ToCompleteChunk, ToCompletion): one `text_completion` event per token,
 * the last with the finish reason, an optional usage event, then `data: [DONE]`.
 */
export function openaiCompletionFormat(model: string, includeUsage: boolean): CompletionFormat {
  const id = responseId("cmpl");
  const modelJson = goJson(model);
  // With include_usage every chunk carries a zero usage object until the real one (CompleteWriter).
  const zeroUsage = includeUsage ? ',"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}' : "";
  const chunk = (createdAtMs: number, text: string, finishReason: string) =>
    `data: {"id":"${id}","object":"text_completion","created":${Math.floor(createdAtMs / 1000)},` +
    `"choices":[{"text":${text},"index":0,"finish_reason":${finishReason}}],"model":${modelJson},` +
    `"system_fingerprint":"${FINGERPRINT}"${zeroUsage}}\n\n`;
  const whole = (createdAtMs: number, text: string, reason: string, usage: string) =>
    `{"id":"${id}","object":"text_completion","created":${Math.floor(createdAtMs / 1000)},"model":${modelJson},` +
    `"system_fingerprint":"${FINGERPRINT}","choices":[{"text":${text},"index":0,"finish_reason":${goJson(reason)}}],` +
    `"usage":${usage}}\n`;
  return {
    streamContentType: SSE_TYPE,
    errorContentType: OPENAI_JSON_TYPE,
    wholeContentType: OPENAI_JSON_TYPE,
    tokenChunks(plan, from, to, _createdAt, createdAtMs) {
      let out = "";
      for (let i = from; i < to; i++) {
        // Thinking goes to GenerateResponse.thinking, which the completion chunk does not carry.
        out += chunk(createdAtMs, i < plan.thinkingCount ? '""' : tokenJson(plan.tokens[i] as number), "null");
      }
      return out;
    },
    finalChunks(final) {
      let out = chunk(final.createdAtMs, '""', goJson(final.doneReason));
      if (includeUsage) {
        out +=
          `data: {"id":"${id}","object":"text_completion","created":${Math.floor(final.createdAtMs / 1000)},` +
          `"choices":[],"model":${modelJson},"system_fingerprint":"${FINGERPRINT}","usage":${usageJson(final)}}\n\n`;
      }
      return `${out}data: [DONE]\n\n`;
    },
    whole: (final) => whole(final.createdAtMs, goJson(final.content), final.doneReason, usageJson(final)),
    errorBody: (status, message) => `${openaiErrorBody(status, message)}\n`,
    lifecycle: (doneReason, _createdAt, createdAtMs) =>
      whole(createdAtMs, '""', doneReason, '{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}'),
  };
}
