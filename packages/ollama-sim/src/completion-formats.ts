import type { GenerationPlan } from "./generation.js";
import { tokenJson } from "./generation.js";
import { goJson } from "./go-json.js";
import { JSON_TYPE, NDJSON_TYPE } from "./http-io.js";

/** What the final chunk (or the whole non-streamed answer) reports. */
export interface FinalInfo {
  createdAt: string;
  createdAtMs: number;
  doneReason: string;
  /** The whole content and thinking text (used by non-streamed answers). */
  content: string;
  thinking: string;
  totalDuration: number;
  loadDuration: number;
  promptEvalCount: number;
  promptEvalDuration: number;
  evalCount: number;
  evalDuration: number;
  /** Generate only: the conversation's token ids. */
  context?: number[];
}

/**
 * How a generation is put on the wire. The native formats write Ollama's NDJSON; the /v1 routes
 * have SSE formats of their own. A format object serves exactly one response.
 */
export interface CompletionFormat {
  readonly streamContentType: string;
  readonly errorContentType: string;
  /** Content type of a `stream: false` answer. */
  readonly wholeContentType: string;
  /** Lines for tokens [from, to) of the plan, one chunk per token. */
  tokenChunks(plan: GenerationPlan, from: number, to: number, createdAt: string, createdAtMs: number): string;
  /** What ends a stream: the done chunk (and for SSE the finish and [DONE] events). */
  finalChunks(final: FinalInfo): string;
  /** The single JSON object of a `stream: false` answer. */
  whole(final: FinalInfo): string;
  /** An error body before any byte was sent. */
  errorBody(status: number, message: string): string;
  /** The answer to a request that only loads ("load") or unloads ("unload") the model. */
  lifecycle(doneReason: "load" | "unload", createdAt: string, createdAtMs: number): string;
}

function metricsJson(final: FinalInfo): string {
  return (
    `"total_duration":${final.totalDuration},"load_duration":${final.loadDuration},` +
    `"prompt_eval_count":${final.promptEvalCount},"prompt_eval_duration":${final.promptEvalDuration},` +
    `"eval_count":${final.evalCount},"eval_duration":${final.evalDuration}`
  );
}

/** /api/generate: chunks carry `response` (and `thinking`); the final one `context` and metrics. */
export function nativeGenerateFormat(model: string): CompletionFormat {
  const prefix = `{"model":${goJson(model)},"created_at":"`;
  return {
    streamContentType: NDJSON_TYPE,
    errorContentType: JSON_TYPE,
    wholeContentType: JSON_TYPE,
    tokenChunks(plan, from, to, createdAt) {
      const head = `${prefix}${createdAt}","response":`;
      let out = "";
      for (let i = from; i < to; i++) {
        const token = tokenJson(plan.tokens[i] as number);
        out +=
          i < plan.thinkingCount ? `${head}"","thinking":${token},"done":false}\n` : `${head}${token},"done":false}\n`;
      }
      return out;
    },
    finalChunks(final) {
      return (
        `${prefix}${final.createdAt}","response":"","done":true,"done_reason":${goJson(final.doneReason)},` +
        `"context":${JSON.stringify(final.context ?? [])},${metricsJson(final)}}\n`
      );
    },
    whole(final) {
      const thinking = final.thinking === "" ? "" : `,"thinking":${goJson(final.thinking)}`;
      return (
        `${prefix}${final.createdAt}","response":${goJson(final.content)}${thinking},"done":true,` +
        `"done_reason":${goJson(final.doneReason)},"context":${JSON.stringify(final.context ?? [])},${metricsJson(final)}}`
      );
    },
    errorBody: (_status, message) => goJson({ error: message }),
    lifecycle(doneReason, createdAt) {
      return `${prefix}${createdAt}","response":"","done":true,"done_reason":"${doneReason}"}`;
    },
  };
}

/** /api/chat: chunks carry `message: {role: "assistant", content[, thinking]}`. */
export function nativeChatFormat(model: string): CompletionFormat {
  const prefix = `{"model":${goJson(model)},"created_at":"`;
  return {
    streamContentType: NDJSON_TYPE,
    errorContentType: JSON_TYPE,
    wholeContentType: JSON_TYPE,
    tokenChunks(plan, from, to, createdAt) {
      const head = `${prefix}${createdAt}","message":{"role":"assistant","content":`;
      let out = "";
      for (let i = from; i < to; i++) {
        const token = tokenJson(plan.tokens[i] as number);
        out +=
          i < plan.thinkingCount
            ? `${head}"","thinking":${token}},"done":false}\n`
            : `${head}${token}},"done":false}\n`;
      }
      return out;
    },
    finalChunks(final) {
      return (
        `${prefix}${final.createdAt}","message":{"role":"assistant","content":""},"done":true,` +
        `"done_reason":${goJson(final.doneReason)},${metricsJson(final)}}\n`
      );
    },
    whole(final) {
      const thinking = final.thinking === "" ? "" : `,"thinking":${goJson(final.thinking)}`;
      return (
        `${prefix}${final.createdAt}","message":{"role":"assistant","content":${goJson(final.content)}${thinking}},` +
        `"done":true,"done_reason":${goJson(final.doneReason)},${metricsJson(final)}}`
      );
    },
    errorBody: (_status, message) => goJson({ error: message }),
    lifecycle(doneReason, createdAt) {
      return `${prefix}${createdAt}","message":{"role":"assistant","content":""},"done":true,"done_reason":"${doneReason}"}`;
    },
  };
}
