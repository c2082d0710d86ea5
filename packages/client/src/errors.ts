import type { Job } from "./types.js";

/**
 * Everything the client throws on its own account extends `ForemanClientError`, so callers can tell
 * foreman's failures from their own bugs. Aborts through a caller's `AbortSignal` are the exception: they
 * reject with the signal's `reason`, exactly as `fetch` does. No message ever contains the API token:
 * messages name the method and URL, and the token only ever travels in a header.
 */
export class ForemanClientError extends Error {
  override name = "ForemanClientError";
}

/** One HTTP request to foreman went wrong; `method` and `url` say which (never with the token). */
export class ForemanRequestError extends ForemanClientError {
  override name = "ForemanRequestError";
  readonly method: string;
  readonly url: string;

  constructor(message: string, request: { method: string; url: string }, options?: ErrorOptions) {
    super(message, options);
    this.method = request.method;
    this.url = request.url;
  }
}

/**
 * The server answered with a non-2xx status. Like ollama-js's `ResponseError`, the message is the
 * server's `error` text unchanged (or the body's text when it is not Ollama-shaped JSON).
 */
export class ForemanHttpError extends ForemanRequestError {
  override name = "ForemanHttpError";
  /** The HTTP status: 400 validation, 401 token, 404 unknown job, 409 conflict, 5xx server trouble. */
  readonly status: number;
  /** The server's `error` text, unchanged. */
  readonly error: string;
  /** The `X-Foreman-Job-Id` response header, when the answer belonged to a job. */
  readonly jobId: string | null;

  constructor(init: { status: number; error: string; method: string; url: string; jobId: string | null }) {
    super(init.error, init);
    this.status = init.status;
    this.error = init.error;
    this.jobId = init.jobId;
  }
}

/** The request never got an answer: connection refused or reset, DNS failure, the body cut off. */
export class ForemanNetworkError extends ForemanRequestError {
  override name = "ForemanNetworkError";
  /** The system error code when there is one (`ECONNREFUSED`, `ECONNRESET`, `UND_ERR_SOCKET`, ...). */
  readonly code: string | undefined;

  constructor(init: { method: string; url: string; cause: unknown }) {
    const detail = describeNetworkCause(init.cause);
    super(`${init.method} ${init.url} failed: ${detail.message}`, init, { cause: init.cause });
    this.code = detail.code;
  }
}

/** One HTTP request took longer than the client's `timeoutMs` (plus the long-poll time it asked for). */
export class ForemanTimeoutError extends ForemanRequestError {
  override name = "ForemanTimeoutError";
  readonly timeoutMs: number;

  constructor(init: { method: string; url: string; timeoutMs: number }) {
    super(`${init.method} ${init.url} timed out after ${init.timeoutMs} ms`, init);
    this.timeoutMs = init.timeoutMs;
  }
}

/** A 2xx answer that is not what the API promises (a body that is not JSON, a broken NDJSON line). */
export class ForemanProtocolError extends ForemanClientError {
  override name = "ForemanProtocolError";
}

/** `run` (and `chat`, `generate`) ended on a job that `failed` or was `canceled`. */
export class JobFailedError extends ForemanClientError {
  override name = "JobFailedError";
  readonly job: Job;
  readonly state: "failed" | "canceled";

  constructor(job: Job) {
    const state = job.state === "canceled" ? "canceled" : "failed";
    const what = state === "canceled" ? `job ${job.id} was canceled` : `job ${job.id} failed`;
    super(job.error ? `${what}: ${job.error}` : what);
    this.job = job;
    this.state = state;
  }
}

/** The job's stream ended with an Ollama error line, `{"error": "…"}`: the job failed mid-way. */
export class JobStreamError extends ForemanClientError {
  override name = "JobStreamError";
  readonly jobId: string;
  /** The `error` text of the line, unchanged. */
  readonly error: string;

  constructor(jobId: string, error: string) {
    super(error);
    this.jobId = jobId;
    this.error = error;
  }
}

/**
 * A stream that survives dropped connections (`follow`, `chatStream`, `generateStream`) reattached and found
 * that the job had restarted: its attempt was cut short (the worker died, the target went away) and the job
 * was requeued, so it generates its answer anew. The chunks already received belong to an answer that will
 * never be finished, and the new one cannot be spliced onto them without duplicating or garbling text, so
 * the stream stops here. The job itself goes on: `stream(jobId)` or `follow(jobId)` reads the new answer from
 * its start, `wait(jobId)` waits for its end.
 */
export class JobRestartedError extends ForemanClientError {
  override name = "JobRestartedError";
  readonly jobId: string;
  /** The attempt the received chunks came from (`X-Foreman-Attempt`), null when the server did not say. */
  readonly attempt: number | null;
  /** The attempt the job is on now, null when the server did not say. */
  readonly currentAttempt: number | null;
  /** Chunks of the cut-short attempt that were delivered before the restart was noticed. */
  readonly chunksReceived: number;

  constructor(init: { jobId: string; attempt: number | null; currentAttempt: number | null; chunksReceived: number }) {
    const now = init.currentAttempt === null ? "" : ` (now on attempt ${init.currentAttempt})`;
    super(
      `job ${init.jobId} restarted after ${init.chunksReceived} chunks${now}: its interrupted answer cannot be continued`,
    );
    this.jobId = init.jobId;
    this.attempt = init.attempt;
    this.currentAttempt = init.currentAttempt;
    this.chunksReceived = init.chunksReceived;
  }
}

/**
 * `wait` or `run` gave up at its `timeoutMs`. The job itself goes on: cancel it with `cancel(jobId)`, or
 * wait again; `run` again with the same `idempotencyKey` picks the same job up instead of a new one.
 */
export class JobTimeoutError extends ForemanClientError {
  override name = "JobTimeoutError";
  /** Null when the submit itself did not get through in time. */
  readonly jobId: string | null;
  /** The job as last seen, null when it was never seen. */
  readonly job: Job | null;
  readonly timeoutMs: number;
  /** The key `run` submitted with. */
  readonly idempotencyKey: string | undefined;

  constructor(init: { jobId: string | null; job: Job | null; timeoutMs: number; idempotencyKey?: string }) {
    const subject = init.jobId ? `job ${init.jobId}` : "the job submission";
    const last = init.job ? ` (last state: ${init.job.state})` : "";
    super(`${subject} did not end within ${init.timeoutMs} ms${last}`);
    this.jobId = init.jobId;
    this.job = init.job;
    this.timeoutMs = init.timeoutMs;
    this.idempotencyKey = init.idempotencyKey;
  }
}

/** Node's fetch rejects with `TypeError("fetch failed")`; the useful part is in its `cause`. */
function describeNetworkCause(cause: unknown): { message: string; code: string | undefined } {
  let current: unknown = cause;
  let message = cause instanceof Error ? cause.message : String(cause);
  let code: string | undefined;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const withCode = current as Error & { code?: unknown };
    if (code === undefined && typeof withCode.code === "string") code = withCode.code;
    if (current.message && current.message !== "fetch failed") message = current.message;
    current = current.cause;
  }
  return { message: message || "network error", code };
}
