import { runnerOptionsKey } from "@foreman/shared";
import { type Embedding, EmbeddingCache, embeddingTokenCount } from "../embedding.js";
import { goJson } from "../go-json.js";
import { msToNs } from "../go-time.js";
import { checkFieldTypes, JSON_TYPE, readJsonBody, sendBody, sendError } from "../http-io.js";
import { DurationError, parseKeepAlive } from "../keep-alive.js";
import { lookupName } from "../model-catalog.js";
import { type Lease, SchedulingCancelled } from "../residency.js";
import type { RequestScope, RouteContext } from "../route-context.js";

const embeddings = new EmbeddingCache();

/** The runner's answer when asked to embed with a model that has no pooling (a chat model). */
const NO_EMBEDDINGS = "this model does not support embeddings";

export interface EmbedResult {
  model: string;
  embeddings: Embedding[];
  totalDuration: number;
  loadDuration: number;
  promptEvalCount: number;
}

/** Where serveEmbed puts its answer: Ollama's JSON, or the /v1 embedding list. */
export interface EmbedWriter {
  fail(status: number, message: string): void;
  succeed(result: EmbedResult): void;
}

/** POST /api/embed */
export async function embedRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const startedAt = ctx.clock.now();
  const parsed = await readJsonBody(scope.req, "api.EmbedRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  await serveEmbed(parsed.body, scope, ctx, startedAt, {
    fail: (status, message) => sendError(scope.res, status, message),
    succeed: (result) => {
      let vectors = "";
      for (const embedding of result.embeddings) vectors += vectors === "" ? embedding.json : `,${embedding.json}`;
      // The metrics are omitempty in api.EmbedResponse: an empty input answers without them.
      let metrics = "";
      if (result.totalDuration > 0) metrics += `,"total_duration":${result.totalDuration}`;
      if (result.loadDuration > 0) metrics += `,"load_duration":${result.loadDuration}`;
      if (result.promptEvalCount > 0) metrics += `,"prompt_eval_count":${result.promptEvalCount}`;
      sendBody(scope.res, 200, JSON_TYPE, `{"model":${goJson(result.model)},"embeddings":[${vectors}]${metrics}}`);
    },
  });
}

/** EmbedHandler (server/routes.go), in its order of checks, for a decoded body. */
export async function serveEmbed(
  body: Record<string, unknown>,
  scope: RequestScope,
  ctx: RouteContext,
  startedAt: number,
  writer: EmbedWriter,
): Promise<void> {
  const typeError = checkFieldTypes(body, "EmbedRequest", {
    model: "string",
    truncate: "bool",
    dimensions: "int",
    options: "object",
  });
  if (typeError) return writer.fail(400, typeError);
  const model = (body.model as string | undefined) ?? "";
  scope.call.entry.model = model;
  if (body.keep_alive !== undefined) scope.call.entry.keepAlive = body.keep_alive;
  let keepAliveMs: number | undefined;
  try {
    keepAliveMs = parseKeepAlive(body.keep_alive);
  } catch (error) {
    if (error instanceof DurationError) return writer.fail(400, error.message);
    throw error;
  }

  const lookup = lookupName(model);
  if (!lookup.ok) {
    return lookup.reason === "invalid"
      ? writer.fail(400, "invalid model name")
      : writer.fail(404, `model '${model}' not found`);
  }

  const inputs: string[] = [];
  const input = body.input;
  if (typeof input === "string") {
    if (input.length > 0) inputs.push(input);
  } else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item !== "string") return writer.fail(400, "invalid input type");
      inputs.push(item);
    }
  } else if (input !== undefined && input !== null) {
    return writer.fail(400, "invalid input type");
  }

  const entry = ctx.catalog.get(lookup.key);
  if (!entry) return writer.fail(404, `model '${model}' not found`);

  let lease: Lease;
  try {
    lease = await ctx.residency.acquire(entry, keepAliveMs, scope.signal, runnerOptionsKey(body.options));
  } catch (error) {
    if (error instanceof SchedulingCancelled) return;
    throw error;
  }
  try {
    const loadedAt = ctx.clock.now();
    if (inputs.length === 0) {
      return writer.succeed({ model, embeddings: [], totalDuration: 0, loadDuration: 0, promptEvalCount: 0 });
    }
    if (entry.embeddingSize === undefined) return writer.fail(500, NO_EMBEDDINGS);
    const truncate = body.truncate !== false;
    const dimensions = (body.dimensions as number | undefined) ?? 0;
    const vectors: Embedding[] = [];
    let tokens = 0;
    for (const text of inputs) {
      const count = embeddingTokenCount(text);
      if (!truncate && count > entry.contextLength) {
        return writer.fail(400, "the input length exceeds the context length");
      }
      tokens += Math.min(count, entry.contextLength);
      vectors.push(embeddings.get(entry.key, entry.embeddingSize, text, dimensions));
    }
    const now = ctx.clock.now();
    writer.succeed({
      model,
      embeddings: vectors,
      totalDuration: Math.max(1, msToNs(now - startedAt)),
      loadDuration: Math.max(1, msToNs(loadedAt - startedAt)),
      promptEvalCount: tokens,
    });
  } finally {
    lease.release();
  }
}

/** POST /api/embeddings (legacy): one prompt, one float64 vector, no metrics. */
export async function embeddingsRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const { res, call } = scope;
  const parsed = await readJsonBody(scope.req, "api.EmbeddingRequest");
  if (!parsed.ok) return sendError(res, 400, parsed.message);
  const body = parsed.body;
  const typeError = checkFieldTypes(body, "EmbeddingRequest", { model: "string", prompt: "string", options: "object" });
  if (typeError) return sendError(res, 400, typeError);
  const model = (body.model as string | undefined) ?? "";
  call.entry.model = model;
  if (body.keep_alive !== undefined) call.entry.keepAlive = body.keep_alive;
  let keepAliveMs: number | undefined;
  try {
    keepAliveMs = parseKeepAlive(body.keep_alive);
  } catch (error) {
    if (error instanceof DurationError) return sendError(res, 400, error.message);
    throw error;
  }
  const lookup = lookupName(model);
  if (!lookup.ok) return sendError(res, 400, lookup.reason === "invalid" ? "invalid model name" : "model is required");
  const entry = ctx.catalog.get(lookup.key);
  // handleScheduleError's os.ErrNotExist branch: %q quoting and a hint, unlike /api/embed.
  if (!entry) return sendError(res, 404, `model ${goJson(model)} not found, try pulling it first`);

  let lease: Lease;
  try {
    lease = await ctx.residency.acquire(entry, keepAliveMs, scope.signal, runnerOptionsKey(body.options));
  } catch (error) {
    if (error instanceof SchedulingCancelled) return;
    throw error;
  }
  try {
    const prompt = (body.prompt as string | undefined) ?? "";
    if (prompt === "") return sendBody(res, 200, JSON_TYPE, '{"embedding":[]}');
    if (entry.embeddingSize === undefined) return sendError(res, 500, NO_EMBEDDINGS);
    const { values } = embeddings.get(entry.key, entry.embeddingSize, prompt);
    // Go widens each float32 to float64 before encoding, so the digits are the float64 ones.
    sendBody(res, 200, JSON_TYPE, `{"embedding":[${Array.from(values).join(",")}]}`);
  } finally {
    lease.release();
  }
}
