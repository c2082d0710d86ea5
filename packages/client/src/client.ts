import { delay, startDeadline } from "./deadline.js";
import { ForemanProtocolError, JobFailedError, JobStreamError, JobTimeoutError } from "./errors.js";
import { HttpTransport } from "./http.js";
import { type RetryOptions, type RetryPolicy, retryPolicy, withRetries } from "./retry.js";
import {
  type ChatJobRequest,
  type ChatResponse,
  type GenerateJobRequest,
  type GenerateResponse,
  isTerminalState,
  type Job,
  type JobChunk,
  type JobListResponse,
  type JobRequest,
  type JobResult,
  type JobState,
  type Message,
} from "./types.js";

/** The server holds a long poll (`GET /jobs/<id>?wait=`) for at most this long. */
export const MAX_WAIT_SECONDS = 60;

const DEFAULT_TIMEOUT_MS = 30_000;

export interface ForemanClientOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:11435` (a path prefix such as `/foreman` is kept). */
  baseUrl: string;
  /** The gateway's FOREMAN_API_TOKEN, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Defaults to the global `fetch` (Node ≥ 20). */
  fetch?: typeof fetch;
  /**
   * Time limit of each HTTP request, default 30 s; a long poll gets its `wait` on top, and a stream's limit
   * covers only its response headers. 0 or Infinity: no limit.
   */
  timeoutMs?: number;
  /** Backoff for the requests that are safe to repeat (long polls, keyed submits). */
  retry?: RetryOptions;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface SubmitOptions extends RequestOptions {
  /**
   * Sent as `Idempotency-Key`: a repeated submit with the same key and body returns the first job instead
   * of making a second one. A keyed submit is retried on transient failures; one without a key is not.
   */
  idempotencyKey?: string;
}

export interface GetOptions extends RequestOptions {
  /** Long poll: the server answers when the job ends or after this many seconds (it caps them at 60). */
  waitSeconds?: number;
}

export interface JobListFilter {
  state?: JobState;
  model?: string;
  /** Page size, 1 to 100; the server's default is 20. */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

export interface ListOptions extends JobListFilter, RequestOptions {}

export interface JobPage {
  /** Newest first. */
  jobs: Job[];
  /** Null on the last page. */
  nextCursor: string | null;
}

export interface WaitOptions extends RequestOptions {
  /** Give up with a JobTimeoutError after this long; no limit when absent. */
  timeoutMs?: number;
}

export interface RunOptions extends WaitOptions {
  /** Defaults to a random key, so a submit retried after a lost answer cannot create a second job. */
  idempotencyKey?: string;
}

export interface ArtifactContent {
  contentType: string;
  bytes: Uint8Array;
}

type RunOptionKeys = keyof RunOptions;

/** Job fields of a chat (everything but `model` and `messages`) and the options of `run`. */
export type ChatOptions = Omit<ChatJobRequest, "model" | "messages" | "prompt"> & RunOptions;

/** Job fields of a generate (everything but `model` and `prompt`) and the options of `run`. */
export type GenerateOptions = Omit<GenerateJobRequest, "model" | "prompt" | "messages"> & RunOptions;

export interface ChatRunResult {
  /** The assistant message's content. */
  text: string;
  thinking?: string;
  message: Message;
  result: ChatResponse;
  job: Job;
}

export interface GenerateRunResult {
  /** The generated `response`. */
  text: string;
  thinking?: string;
  result: GenerateResponse;
  job: Job;
}

/**
 * A typed client of foreman's `/jobs` API: async jobs to submit, inspect, list, cancel, stream
 * and collect artifacts from, and a synchronous facade (`run`, `chat`, `generate`) that submits and waits.
 */
export class ForemanClient {
  private readonly http: HttpTransport;
  private readonly retry: RetryPolicy;

  constructor(options: ForemanClientOptions) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new TypeError("timeoutMs must be a number of milliseconds ≥ 0 (0 or Infinity: no limit)");
    }
    this.http = new HttpTransport({ baseUrl: options.baseUrl, token: options.token, fetch: options.fetch, timeoutMs });
    this.retry = retryPolicy(options.retry);
  }

  /** `POST /jobs`: queues a job and answers at once with it (state `queued`). */
  async submit(request: JobRequest, options: SubmitOptions = {}): Promise<Job> {
    const key = options.idempotencyKey;
    const post = () =>
      this.http.json<Job>({
        method: "POST",
        path: "/jobs",
        body: request,
        headers: key === undefined ? undefined : { "Idempotency-Key": checkIdempotencyKey(key) },
        signal: options.signal,
      });
    // Without a key a repeated POST could queue a second job, so only a keyed submit is retried.
    return key === undefined ? await post() : await withRetries(post, this.retry, options.signal);
  }

  /** `GET /jobs/<id>`, a long poll with `waitSeconds`. */
  async get(id: string, options: GetOptions = {}): Promise<Job> {
    const waitSeconds = options.waitSeconds === undefined ? undefined : checkWaitSeconds(options.waitSeconds);
    return await this.http.json<Job>({
      method: "GET",
      path: jobPath(id),
      query: { wait: waitSeconds },
      signal: options.signal,
      extraTimeoutMs: (waitSeconds ?? 0) * 1000,
    });
  }

  /** `GET /jobs`: one page, newest first. */
  async list(options: ListOptions = {}): Promise<JobPage> {
    const { state, model, limit, cursor } = options;
    const page = await this.http.json<JobListResponse>({
      method: "GET",
      path: "/jobs",
      query: { state, model, limit, cursor },
      signal: options.signal,
    });
    return { jobs: page.jobs, nextCursor: page.next_cursor || null };
  }

  /** Every job matching the filter, newest first, following the cursors page by page (`limit` per page). */
  async *listAll(options: ListOptions = {}): AsyncGenerator<Job, void, undefined> {
    let cursor = options.cursor;
    for (;;) {
      const page = await this.list({ ...options, cursor });
      yield* page.jobs;
      if (page.nextCursor === null) return;
      if (page.nextCursor === cursor) {
        throw new ForemanProtocolError(`GET /jobs answered with the cursor it was given (${cursor}): stopping`);
      }
      cursor = page.nextCursor;
    }
  }

  /**
   * `POST /jobs/<id>/cancel`. A queued job comes back `canceled`; a running one may come back still
   * `loading`/`working` with `cancel_requested: true` while the worker stops it (`wait` for the end).
   * An ended job is a ForemanHttpError 409.
   */
  async cancel(id: string, options: RequestOptions = {}): Promise<Job> {
    return await this.http.json<Job>({ method: "POST", path: `${jobPath(id)}/cancel`, signal: options.signal });
  }

  /** `GET /jobs/<id>/artifacts/<name>`: the artifact's bytes and content type. */
  async artifact(id: string, name: string, options: RequestOptions = {}): Promise<ArtifactContent> {
    if (typeof name !== "string" || name === "") throw new TypeError("artifact name must be a non-empty string");
    return await this.http.bytes({
      method: "GET",
      path: `${jobPath(id)}/artifacts/${encodeURIComponent(name)}`,
      signal: options.signal,
    });
  }

  /** An artifact decoded as UTF-8 text (`transcript.ndjson`, ...). */
  async artifactText(id: string, name: string, options: RequestOptions = {}): Promise<string> {
    const { bytes } = await this.artifact(id, name, options);
    return new TextDecoder("utf-8").decode(bytes);
  }

  /** An artifact parsed as JSON (`result.json`, ...). */
  async artifactJson<T = unknown>(id: string, name: string, options: RequestOptions = {}): Promise<T> {
    const text = await this.artifactText(id, name, options);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ForemanProtocolError(`artifact ${name} of job ${id} is not valid JSON`);
    }
  }

  /** A job's final Ollama answer: inline when small, else fetched from its `result_url`; null if none yet. */
  async result(job: Job, options: RequestOptions = {}): Promise<JobResult | null> {
    if (job.result) return job.result;
    if (!job.result_url) return null;
    return await this.http.json<JobResult>({ method: "GET", path: job.result_url, signal: options.signal });
  }

  /**
   * `GET /jobs/<id>/stream`: the job's Ollama chunks from the first one, then live until the job ends.
   * A job that fails mid-way ends its stream with `{"error": "…"}`, thrown here as a JobStreamError.
   */
  async *stream<T extends JobChunk = JobChunk>(
    id: string,
    options: RequestOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    for await (const line of this.http.ndjson({
      method: "GET",
      path: `${jobPath(id)}/stream`,
      signal: options.signal,
    })) {
      if (isErrorLine(line)) throw new JobStreamError(id, line.error);
      yield line as T;
    }
  }

  /**
   * Long-polls (`wait=` up to 60 s at a time) until the job is `done`, `failed` or `canceled`, and resolves
   * with it whatever the outcome. Lost connections and 502/503/504 are retried with backoff.
   */
  async wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const last: { job: Job | null } = { job: null };
    const deadline = startDeadline({ signal: options.signal, timeoutMs: options.timeoutMs });
    const endsAt = deadlineEnd(options.timeoutMs);
    try {
      return await this.pollUntilEnded(id, null, endsAt, deadline.signal, last);
    } catch (error) {
      if (deadline.timedOut) throw new JobTimeoutError({ jobId: id, job: last.job, timeoutMs: options.timeoutMs ?? 0 });
      throw error;
    } finally {
      deadline.dispose();
    }
  }

  /**
   * The synchronous facade: submits the job (with an Idempotency-Key, random unless given) and waits for
   * its end. Resolves with the job when it is `done`; rejects with a JobFailedError carrying the job when
   * it `failed` or was `canceled`, and with a JobTimeoutError after `timeoutMs`. Giving up (timeout or
   * abort) does not cancel the job: a new `run` with the same key picks it up again.
   */
  async run(request: JobRequest, options: RunOptions = {}): Promise<Job> {
    const idempotencyKey = options.idempotencyKey ?? globalThis.crypto.randomUUID();
    const last: { job: Job | null } = { job: null };
    const deadline = startDeadline({ signal: options.signal, timeoutMs: options.timeoutMs });
    const endsAt = deadlineEnd(options.timeoutMs);
    let job: Job;
    try {
      const submitted = await this.submit(request, { idempotencyKey, signal: deadline.signal });
      last.job = submitted;
      job = await this.pollUntilEnded(submitted.id, submitted, endsAt, deadline.signal, last);
    } catch (error) {
      if (deadline.timedOut) {
        const jobId = last.job?.id ?? null;
        throw new JobTimeoutError({ jobId, job: last.job, timeoutMs: options.timeoutMs ?? 0, idempotencyKey });
      }
      throw error;
    } finally {
      deadline.dispose();
    }
    if (job.state !== "done") throw new JobFailedError(job);
    return job;
  }

  /** `run` of a chat job; resolves with the assistant's text alongside the job. */
  async chat(model: string, messages: Message[], options: ChatOptions = {}): Promise<ChatRunResult> {
    const [fields, runOptions] = splitRunOptions(options);
    const job = await this.run({ ...fields, model, messages }, runOptions);
    const result = await this.result(job, { signal: runOptions.signal });
    if (!result || !("message" in result) || !result.message) {
      throw new ForemanProtocolError(`job ${job.id} is done but has no chat result`);
    }
    const { message } = result;
    return { text: message.content ?? "", thinking: message.thinking, message, result, job };
  }

  /** `run` of a generate job; resolves with the generated text alongside the job. */
  async generate(model: string, prompt: string, options: GenerateOptions = {}): Promise<GenerateRunResult> {
    const [fields, runOptions] = splitRunOptions(options);
    const job = await this.run({ ...fields, model, prompt }, runOptions);
    const result = await this.result(job, { signal: runOptions.signal });
    if (!result || !("response" in result) || typeof result.response !== "string") {
      throw new ForemanProtocolError(`job ${job.id} is done but has no generate result`);
    }
    return { text: result.response, thinking: result.thinking, result, job };
  }

  private async pollUntilEnded(
    id: string,
    known: Job | null,
    endsAt: number,
    signal: AbortSignal,
    last: { job: Job | null },
  ): Promise<Job> {
    let job = known;
    while (job === null || !isTerminalState(job.state)) {
      const waitSeconds = Math.max(1, Math.min(MAX_WAIT_SECONDS, Math.ceil((endsAt - Date.now()) / 1000)));
      const startedAt = Date.now();
      job = await withRetries(() => this.get(id, { waitSeconds, signal }), this.retry, signal);
      last.job = job;
      // A server that answers a long poll early without the job having ended (one that does not hold
      // polls at all) must not turn this loop into a busy one.
      if (!isTerminalState(job.state) && Date.now() - startedAt < 1000) await delay(this.retry.minDelayMs, signal);
    }
    return job;
  }
}

function jobPath(id: string): string {
  if (typeof id !== "string" || id === "") throw new TypeError("job id must be a non-empty string");
  return `/jobs/${encodeURIComponent(id)}`;
}

function checkWaitSeconds(seconds: number): number {
  if (typeof seconds !== "number" || Number.isNaN(seconds) || seconds < 0) {
    throw new TypeError("waitSeconds must be a number of seconds ≥ 0");
  }
  return Math.min(MAX_WAIT_SECONDS, Math.ceil(seconds));
}

function checkIdempotencyKey(key: string): string {
  // Header-safe, so fetch does not reject it with a less helpful message.
  if (typeof key !== "string" || !/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(key)) {
    throw new TypeError("idempotencyKey must be non-empty printable ASCII without leading or trailing spaces");
  }
  return key;
}

function deadlineEnd(timeoutMs: number | undefined): number {
  return timeoutMs !== undefined && timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
}

function isErrorLine(line: unknown): line is { error: string } {
  return typeof line === "object" && line !== null && typeof (line as { error?: unknown }).error === "string";
}

function splitRunOptions<T extends RunOptions>(options: T): [Omit<T, RunOptionKeys>, RunOptions] {
  const { timeoutMs, idempotencyKey, signal, ...fields } = options;
  return [fields, { timeoutMs, idempotencyKey, signal }];
}
