import { isEmbeddingKind, type JobRecord, type RelayFraming, type Store } from "@foreman/shared";

/**
 * What a synchronous caller is told while its job has not started: the framing its answer will have (known
 * from the request before the target answers, for the early answer), the empty chunk that keeps a reader
 * with a short header timeout reading, and the error that ends a wait past its limit.
 */

/**
 * Ollama streams unless told not to; the OpenAI-compatible routes stream only when asked; embeddings are
 * always one JSON body.
 */
export function requestedFraming(job: Pick<JobRecord, "api" | "kind" | "request">): RelayFraming {
  if (isEmbeddingKind(job.kind)) return "whole";
  const stream = job.request.stream ?? job.api === "ollama";
  if (!stream) return "whole";
  return job.api === "ollama" ? "ndjson" : "sse";
}

export function contentTypeFor(framing: RelayFraming): string {
  if (framing === "ndjson") return "application/x-ndjson";
  if (framing === "sse") return "text/event-stream";
  return "application/json; charset=utf-8";
}

/**
 * A chunk with no content, in the shape the route streams, so ollama-js, LangChain and the openai client
 * read it as part of the answer and show nothing extra. For a `stream: false` answer, JSON's leading
 * whitespace does the same job: the body still parses as the one object that follows.
 */
export function emptyChunk(job: Pick<JobRecord, "id" | "api" | "kind" | "request">, framing: RelayFraming): string {
  if (framing === "whole") return "\n";
  const model = String(job.request.model ?? "");
  if (job.api === "ollama") {
    const created_at = new Date().toISOString();
    const chunk =
      job.kind === "chat"
        ? { model, created_at, message: { role: "assistant", content: "" }, done: false }
        : { model, created_at, response: "", done: false };
    return `${JSON.stringify(chunk)}\n`;
  }
  const created = Math.floor(Date.now() / 1000);
  const chunk =
    job.kind === "chat"
      ? {
          id: `chatcmpl-${job.id}`,
          object: "chat.completion.chunk",
          created,
          model,
          system_fingerprint: "fp_ollama",
          choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
        }
      : {
          id: `cmpl-${job.id}`,
          object: "text_completion",
          created,
          model,
          system_fingerprint: "fp_ollama",
          choices: [{ text: "", index: 0, finish_reason: null }],
        };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/**
 * Why a job has not started within the caller's limit: 503 when the target is down (since when it was last
 * seen), 504 when it simply waits its turn (with its place in the queue).
 */
export function waitLimitError(
  store: Pick<Store, "target" | "jobs">,
  job: Pick<JobRecord, "id">,
  waitedMs: number,
  position: number | undefined,
): { status: number; error: string } {
  const seconds = Math.round(waitedMs / 1000);
  const target = store.target.get();
  if (target && !target.reachable) {
    const since = target.lastSeenAt ? `last seen ${new Date(target.lastSeenAt).toISOString()}` : "never seen";
    return {
      status: 503,
      error: `the Ollama target is unreachable (${since}); job ${job.id} did not start within ${seconds} s and was canceled`,
    };
  }
  const state = store.jobs.state(job.id);
  const where =
    state === "queued" && position !== undefined
      ? `it was number ${position} in the queue`
      : state === "loading"
        ? "its model was still loading"
        : "it was still queued";
  return {
    status: 504,
    error: `job ${job.id} did not start within ${seconds} s (${where}) and was canceled`,
  };
}
