import type {
  JSONObject,
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4Content,
  LanguageModelV4FinishReason,
  LanguageModelV4GenerateResult,
  LanguageModelV4StreamPart,
  LanguageModelV4StreamResult,
  LanguageModelV4Usage,
} from "@ai-sdk/provider";
import { type ChatResponse, type ForemanClient, type Job, JobFailedError, type ToolCall } from "@foreman/client";
import { toJobCall } from "./call-settings.js";

/**
 * A foreman chat model: every call is a foreman job, queued with the other work for the same Ollama
 * server and drained by model. `doGenerate` submits the job and waits for its end (long polls that ride
 * out a restarting gateway); `doStream` follows the job's chunks with the client's durable stream, which
 * reattaches after a dropped connection and continues after the last chunk received. Aborting a call (or
 * cancelling its stream) cancels the job.
 */
export class ForemanChatLanguageModel implements LanguageModelV4 {
  readonly specificationVersion = "v4";
  readonly provider = "foreman.chat";
  // Nothing is fetched from URLs: the AI SDK downloads images and hands over their bytes.
  readonly supportedUrls: Record<string, RegExp[]> = {};

  constructor(
    readonly modelId: string,
    private readonly client: () => ForemanClient,
  ) {}

  async doGenerate(call: LanguageModelV4CallOptions): Promise<LanguageModelV4GenerateResult> {
    const { request, idempotencyKey, warnings } = toJobCall(call);
    const client = this.client();
    const signal = call.abortSignal;
    const submitted = await client.submit(
      { ...request, model: this.modelId },
      { idempotencyKey: idempotencyKey ?? globalThis.crypto.randomUUID(), signal },
    );
    let job: Job;
    try {
      job = await client.wait(submitted.id, { signal });
    } catch (error) {
      if (signal?.aborted) await client.cancel(submitted.id, { signal: AbortSignal.timeout(5_000) }).catch(() => {});
      throw error;
    }
    if (job.state !== "done") throw new JobFailedError(job);
    const result = (await client.result(job, { signal })) as ChatResponse;
    const toolCalls = result.message.tool_calls ?? [];
    const content: LanguageModelV4Content[] = [];
    if (result.message.thinking) content.push({ type: "reasoning", text: result.message.thinking });
    if (result.message.content) content.push({ type: "text", text: result.message.content });
    for (const call of toolCalls) content.push(toolCallContent(call));
    return {
      content,
      finishReason: finishReason(result.done_reason, toolCalls.length > 0),
      usage: usage(result),
      providerMetadata: { foreman: jobMetadata(job) },
      request: { body: request },
      response: { id: job.id, modelId: result.model, ...timestamp(result) },
      warnings,
    };
  }

  async doStream(call: LanguageModelV4CallOptions): Promise<LanguageModelV4StreamResult> {
    const { request, idempotencyKey, warnings } = toJobCall(call);
    const { messages, ...fields } = request;
    let onJob: (job: Job) => void = () => {};
    const submitted = new Promise<Job>((resolve) => {
      onJob = resolve;
    });
    const chunks = this.client().chatStream(this.modelId, messages, {
      ...fields,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(call.abortSignal ? { signal: call.abortSignal } : {}),
      onJob,
    });
    // The first read submits the job: a refused submit (a bad request, no gateway) rejects this call itself,
    // and the stream can open with the job's id.
    let pending: Promise<IteratorResult<ChatResponse, void>> | null = chunks.next();
    const job = await Promise.race([submitted, pending.then(() => submitted)]);

    const state = new StreamState();
    const stream = new ReadableStream<LanguageModelV4StreamPart>({
      start(controller) {
        controller.enqueue({ type: "stream-start", warnings });
        controller.enqueue({ type: "response-metadata", id: job.id, modelId: job.model });
      },
      async pull(controller) {
        try {
          const next = await (pending ?? chunks.next());
          pending = null;
          if (next.done) {
            for (const part of state.finish(job)) controller.enqueue(part);
            controller.close();
            return;
          }
          for (const part of state.parts(next.value)) controller.enqueue(part);
        } catch (error) {
          if (call.abortSignal?.aborted) {
            controller.error(error);
            return;
          }
          // The job failed, restarted under the stream, or the gateway stayed out of reach.
          controller.enqueue({ type: "error", error });
          for (const part of state.finish(job, "error")) controller.enqueue(part);
          controller.close();
        }
      },
      async cancel() {
        // Leaving the client's stream early cancels the job: nobody reads its answer any more.
        await chunks.return(undefined);
      },
    });
    return { stream, request: { body: request } };
  }
}

/** Turns Ollama chat chunks into the AI SDK's stream parts: reasoning, text and tool calls, then the finish. */
class StreamState {
  private reasoningOpen = false;
  private textOpen = false;
  private toolCalls = 0;
  private last: ChatResponse | null = null;

  parts(chunk: ChatResponse): LanguageModelV4StreamPart[] {
    const parts: LanguageModelV4StreamPart[] = [];
    this.last = chunk;
    const { thinking, content, tool_calls: calls } = chunk.message ?? { content: "" };
    if (thinking) {
      if (!this.reasoningOpen) parts.push({ type: "reasoning-start", id: "reasoning-0" });
      this.reasoningOpen = true;
      parts.push({ type: "reasoning-delta", id: "reasoning-0", delta: thinking });
    }
    if (content) {
      if (this.reasoningOpen) parts.push({ type: "reasoning-end", id: "reasoning-0" });
      this.reasoningOpen = false;
      if (!this.textOpen) parts.push({ type: "text-start", id: "text-0" });
      this.textOpen = true;
      parts.push({ type: "text-delta", id: "text-0", delta: content });
    }
    for (const call of calls ?? []) {
      this.toolCalls++;
      parts.push(toolCallContent(call));
    }
    return parts;
  }

  finish(job: Job, unified?: "error"): LanguageModelV4StreamPart[] {
    const parts: LanguageModelV4StreamPart[] = [];
    if (this.reasoningOpen) parts.push({ type: "reasoning-end", id: "reasoning-0" });
    if (this.textOpen) parts.push({ type: "text-end", id: "text-0" });
    this.reasoningOpen = this.textOpen = false;
    const done = this.last?.done === true ? this.last : null;
    parts.push({
      type: "finish",
      finishReason:
        unified === "error"
          ? { unified: "error", raw: undefined }
          : finishReason(done?.done_reason, this.toolCalls > 0),
      usage: usage(done),
      providerMetadata: { foreman: jobMetadata(job) },
    });
    return parts;
  }
}

function toolCallContent(call: ToolCall): Extract<LanguageModelV4Content, { type: "tool-call" }> {
  return {
    type: "tool-call",
    // Older Ollama versions send no id; the AI SDK needs one to pair the result with its call.
    toolCallId: call.id ?? globalThis.crypto.randomUUID(),
    toolName: call.function.name,
    input: JSON.stringify(call.function.arguments ?? {}),
  };
}

/** Ollama's `done_reason`: "stop", "length", or "load"/"unload" for a call that only (un)loaded the model. */
function finishReason(doneReason: string | undefined, calledTools: boolean): LanguageModelV4FinishReason {
  if (calledTools) return { unified: "tool-calls", raw: doneReason };
  if (doneReason === "stop") return { unified: "stop", raw: doneReason };
  if (doneReason === "length") return { unified: "length", raw: doneReason };
  return { unified: "other", raw: doneReason };
}

function usage(result: ChatResponse | null): LanguageModelV4Usage {
  return {
    inputTokens: { total: result?.prompt_eval_count, noCache: undefined, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: result?.eval_count, text: undefined, reasoning: undefined },
  };
}

/** `providerMetadata.foreman`: the job that answered, to look up, cancel or fetch artifacts of later. */
function jobMetadata(job: Job): JSONObject {
  return { jobId: job.id, ...(job.metadata ? { metadata: job.metadata as JSONObject } : {}) };
}

function timestamp(result: ChatResponse): { timestamp?: Date } {
  const at = result.created_at ? new Date(result.created_at) : null;
  return at && !Number.isNaN(at.getTime()) ? { timestamp: at } : {};
}
