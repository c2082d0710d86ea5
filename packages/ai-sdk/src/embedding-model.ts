import type { EmbeddingModelV4, EmbeddingModelV4CallOptions, EmbeddingModelV4Result } from "@ai-sdk/provider";
import type { ForemanClient } from "@foreman/client";

/**
 * A foreman embedding model: Ollama's `/api/embed`, which the gateway passes straight to the target past the
 * queue (an always-resident embedder answers while generation jobs wait), so calls may run in parallel.
 */
export class ForemanEmbeddingModel implements EmbeddingModelV4 {
  readonly specificationVersion = "v4";
  readonly provider = "foreman.embedding";
  /** Ollama takes any number; a bound keeps each request body a reasonable size. */
  readonly maxEmbeddingsPerCall = 256;
  readonly supportsParallelCalls = true;

  constructor(
    readonly modelId: string,
    private readonly client: () => ForemanClient,
  ) {}

  async doEmbed(call: EmbeddingModelV4CallOptions): Promise<EmbeddingModelV4Result> {
    const keepAlive = call.providerOptions?.foreman?.keepAlive;
    const answer = await this.client().embed(
      {
        model: this.modelId,
        input: call.values,
        ...(call.dimensions !== undefined ? { dimensions: call.dimensions } : {}),
        ...(typeof keepAlive === "string" || typeof keepAlive === "number" ? { keep_alive: keepAlive } : {}),
      },
      call.abortSignal ? { signal: call.abortSignal } : {},
    );
    return {
      embeddings: answer.embeddings,
      ...(answer.prompt_eval_count !== undefined ? { usage: { tokens: answer.prompt_eval_count } } : {}),
      warnings: [],
    };
  }
}
