import type { JobApi, JobKind } from "@foreman/shared";

const METRIC_FIELDS = [
  "total_duration",
  "load_duration",
  "prompt_eval_count",
  "prompt_eval_duration",
  "eval_count",
  "eval_duration",
] as const;

type Chunk = Record<string, unknown>;

/**
 * Builds a job's result and metrics from the chunks the target streamed: the final chunk with the text
 * (and thinking, tool calls) joined, i.e. what the target would have answered with `stream: false`.
 */
export class ResultCollector {
  private content = "";
  private thinking = "";
  private toolCalls: unknown[] = [];
  private final: Chunk | null = null;
  private finishReason: string | null = null;
  private whole: Chunk | null = null;
  done = false;

  constructor(
    private readonly kind: JobKind,
    private readonly api: JobApi,
  ) {}

  /** A whole (non-streamed) answer: it is the result as is. */
  addWhole(body: string): void {
    this.whole = JSON.parse(body) as Chunk;
    this.done = true;
  }

  addChunk(line: string): void {
    const chunk = JSON.parse(line) as Chunk;
    if (this.api === "openai") {
      this.addOpenAIChunk(chunk);
      return;
    }
    const part = (this.kind === "chat" ? chunk.message : chunk) as Chunk | undefined;
    const text = this.kind === "chat" ? part?.content : chunk.response;
    if (typeof text === "string") this.content += text;
    if (typeof part?.thinking === "string") this.thinking += part.thinking;
    if (Array.isArray(part?.tool_calls)) this.toolCalls.push(...part.tool_calls);
    if (chunk.done === true) {
      this.final = chunk;
      this.done = true;
    }
  }

  /** The OpenAI stream ends with `[DONE]`, which the worker reports here. */
  markDone(): void {
    this.done = true;
  }

  private addOpenAIChunk(chunk: Chunk): void {
    const choice = (chunk.choices as Chunk[] | undefined)?.[0];
    const delta = (choice?.delta ?? {}) as Chunk;
    const text = this.kind === "chat" ? delta.content : choice?.text;
    if (typeof text === "string") this.content += text;
    if (typeof delta.reasoning === "string") this.thinking += delta.reasoning;
    if (Array.isArray(delta.tool_calls)) this.toolCalls.push(...delta.tool_calls);
    if (typeof choice?.finish_reason === "string") this.finishReason = choice.finish_reason;
    this.final = { ...chunk, ...(chunk.usage ? {} : this.final?.usage ? { usage: this.final.usage } : {}) };
  }

  result(): unknown {
    if (this.whole) return this.whole;
    if (!this.final) return null;
    if (this.api === "openai") {
      return {
        id: this.final.id,
        model: this.final.model,
        content: this.content,
        ...(this.thinking ? { reasoning: this.thinking } : {}),
        ...(this.toolCalls.length ? { tool_calls: this.toolCalls } : {}),
        finish_reason: this.finishReason,
        ...(this.final.usage ? { usage: this.final.usage } : {}),
      };
    }
    if (this.kind === "chat") {
      const message: Chunk = { ...(this.final.message as Chunk), content: this.content };
      if (this.thinking) message.thinking = this.thinking;
      if (this.toolCalls.length) message.tool_calls = this.toolCalls;
      return { ...this.final, message };
    }
    return { ...this.final, response: this.content, ...(this.thinking ? { thinking: this.thinking } : {}) };
  }

  metrics(): Record<string, number> | null {
    const source = this.whole ?? this.final;
    if (!source) return null;
    const out: Record<string, number> = {};
    for (const field of METRIC_FIELDS) if (typeof source[field] === "number") out[field] = source[field] as number;
    const usage = source.usage as Record<string, number> | undefined;
    if (usage) {
      if (typeof usage.prompt_tokens === "number") out.prompt_eval_count = usage.prompt_tokens;
      if (typeof usage.completion_tokens === "number") out.eval_count = usage.completion_tokens;
    }
    return Object.keys(out).length ? out : null;
  }
}
