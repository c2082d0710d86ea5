import { delay, startDeadline } from "./deadline.js";
import { followJobStream, isErrorLine } from "./durable-stream.js";
import { ForemanProtocolError, JobFailedError, JobStreamError, JobTimeoutError } from "./errors.js";
import { HttpTransport } from "./http.js";
import { type RetryOptions, type RetryPolicy, retryPolicy, withRetries } from "./retry.js";
import {
  type ChatJobRequest,
  type ChatResponse,
  type EmbedRequest,
  type EmbedResponse,
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

/** How long leaving a stream early waits for its job's cancel to get through. */
const CANCEL_ON_EXIT_TIMEOUT_MS = 5_000;

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

export interface StreamOptions extends RequestOptions {
  /**
   * Sent as `Idempotency-Key` with the submit (a random UUID unless given), so a submit retried after a
   * lost answer, or a whole call repeated with the same key, follows the one job instead of making another.
   */
  idempotencyKey?: string;
  /** Told the job as soon as it is queued (its id, for `cancel`, `wait` or artifacts later). */
  onJob?: (job: Job) => void;
}

type StreamOptionKeys = keyof StreamOptions;

/** Job fields of a chat (everything but `model` and `messages`) and the options of a durable stream. */
export type ChatStreamOptions = Omit<ChatJobRequest, "model" | "messages" | "prompt"> & StreamOptions;

/** Job fields of a generate (everything but `model` and `prompt`) and the options of a durable stream. */
export type GenerateStreamOptions = Omit<GenerateJobRequest, "model" | "prompt" | "messages"> & StreamOptions;

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

  /**
   * `GET /jobs`, newest first. Awaited, it is one page (`jobs`, `nextCursor`); iterated with `for await`,
   * it is every page, following the cursors (`limit` jobs per page), each fetched when the loop asks for it.
   */
  list(options: ListOptions = {}): JobPages {
    const { state, model, limit, signal } = options;
    return new JobPages(options.cursor, async (cursor) => {
      const page = await this.http.json<JobListResponse>({
        method: "GET",
        path: "/jobs",
        query: { state, model, limit, cursor },
        signal,
      });
      return { jobs: page.jobs, nextCursor: page.next_cursor || null };
    });
  }

  /** Every job matching the filter, newest first, following the cursors page by page (`limit` per page). */
  async *listAll(options: ListOptions = {}): AsyncGenerator<Job, void, undefined> {
    for await (const page of this.list(options)) yield* page.jobs;
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
   * `POST /api/embed`: embeddings, answered at once (the gateway passes them to the target past the queue).
   * Lost connections and 502/503/504 are retried: computing an embedding twice is harmless.
   */
  async embed(request: EmbedRequest, options: RequestOptions = {}): Promise<EmbedResponse> {
    const post = () =>
      this.http.json<EmbedResponse>({ method: "POST", path: "/api/embed", body: request, signal: options.signal });
    return await withRetries(post, this.retry, options.signal);
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
   * `GET /jobs/<id>/stream` that survives dropped connections: when the connection breaks (or a gateway
   * restarts), it reattaches and continues after the last chunk received, so every chunk arrives exactly
   * once. A job that restarted after some of its chunks were delivered (its attempt was cut short and it
   * generates anew) ends the loop with a JobRestartedError; a job that fails, with a JobStreamError.
   */
  follow<T extends JobChunk = JobChunk>(id: string, options: RequestOptions = {}): AsyncGenerator<T, void, undefined> {
    jobPath(id);
    const deps = {
      http: this.http,
      retry: this.retry,
      getJob: (jobId: string, signal?: AbortSignal) => this.get(jobId, { signal }),
    };
    return followJobStream<T>(deps, id, options.signal);
  }

  /**
   * Submits a chat job (with an Idempotency-Key) and streams its chunks as they are generated, through
   * dropped connections (see `follow`). Aborting the signal, or leaving the loop early, cancels the job.
   */
  async *chatStream(
    model: string,
    messages: Message[],
    options: ChatStreamOptions = {},
  ): AsyncGenerator<ChatResponse, void, undefined> {
    const [fields, streamOptions] = splitStreamOptions(options);
    yield* this.submitAndFollow<ChatResponse>({ ...fields, model, messages }, streamOptions);
  }

  /**
   * Submits a generate job (with an Idempotency-Key) and streams its chunks as they are generated, through
   * dropped connections (see `follow`). Aborting the signal, or leaving the loop early, cancels the job.
   */
  async *generateStream(
    model: string,
    prompt: string,
    options: GenerateStreamOptions = {},
  ): AsyncGenerator<GenerateResponse, void, undefined> {
    const [fields, streamOptions] = splitStreamOptions(options);
    yield* this.submitAndFollow<GenerateResponse>({ ...fields, model, prompt }, streamOptions);
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

  private async *submitAndFollow<T extends JobChunk>(
    request: JobRequest,
    options: StreamOptions,
  ): AsyncGenerator<T, void, undefined> {
    const { signal } = options;
    const idempotencyKey = options.idempotencyKey ?? globalThis.crypto.randomUUID();
    const job = await this.submit(request, { idempotencyKey, signal });
    options.onJob?.(job);
    let outcome: "following" | "ended" | "failed" = "following";
    try {
      yield* this.follow<T>(job.id, { signal });
      outcome = "ended";
    } catch (error) {
      // A stream that failed on its own (the job failed, restarted, or the gateway stayed away) leaves the
      // job as it is; only the caller's abort is a wish to stop it.
      outcome = signal?.aborted ? "following" : "failed";
      throw error;
    } finally {
      // Still following here means the caller aborted or left the loop early: nobody will read the answer.
      if (outcome === "following") await this.cancelQuietly(job.id);
    }
  }

  /**
   * Best effort, without the caller's (aborted) signal and briefly: a job that has ended already answers
   * 409, and a gateway out of reach cannot be told anyway.
   */
  private async cancelQuietly(id: string): Promise<void> {
    await this.cancel(id, { signal: AbortSignal.timeout(CANCEL_ON_EXIT_TIMEOUT_MS) }).catch(() => {});
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

function splitStreamOptions<T extends StreamOptions>(options: T): [Omit<T, StreamOptionKeys>, StreamOptions] {
  const { idempotencyKey, signal, onJob, ...fields } = options;
  return [fields, { idempotencyKey, signal, onJob }];
}

function splitRunOptions<T extends RunOptions>(options: T): [Omit<T, RunOptionKeys>, RunOptions] {
  const { timeoutMs, idempotencyKey, signal, ...fields } = options;
  return [fields, { timeoutMs, idempotencyKey, signal }];
}

/**
 * `list()`'s answer: a promise of the first page, and an async iterable of every page from it on. The first
 * page is fetched once, whichever way it is asked for first.
 */
export class JobPages implements Promise<JobPage>, AsyncIterable<JobPage> {
  readonly [Symbol.toStringTag] = "JobPages";
  private first: Promise<JobPage> | undefined;

  constructor(
    private readonly cursor: string | undefined,
    private readonly fetchPage: (cursor: string | undefined) => Promise<JobPage>,
  ) {}

  // biome-ignore lint/suspicious/noThenProperty: awaiting list() gives its first page, as it always has.
  then<A = JobPage, B = never>(
    onFulfilled?: ((page: JobPage) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.firstPage().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<JobPage | B> {
    return this.firstPage().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<JobPage> {
    return this.firstPage().finally(onFinally);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<JobPage, void, undefined> {
    let cursor = this.cursor;
    let page = await this.firstPage();
    for (;;) {
      yield page;
      if (page.nextCursor === null) return;
      if (page.nextCursor === cursor) {
        throw new ForemanProtocolError(`GET /jobs answered with the cursor it was given (${cursor}): stopping`);
      }
      cursor = page.nextCursor;
      page = await this.fetchPage(cursor);
    }
  }

  private firstPage(): Promise<JobPage> {
    this.first ??= this.fetchPage(this.cursor);
    return this.first;
  }
}
