import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
// The gateway's own canonical form: a retried body must match its first exactly as the gateway decides.
import { canonicalJson } from "../../gateway/src/jobs/job-request.js";
import { isTerminalState, JOB_STATES, type Job, type JobEventType } from "../src/types.js";

/**
 * A minimal, in-memory `/jobs` server on a real loopback socket, faithful to the `/jobs` API as the
 * gateway serves it: Ollama-shaped `{"error"}` bodies naming the field, `X-Foreman-Job-Id` on
 * every job response, the bearer token, Idempotency-Key replay and conflict, long polls, cursors,
 * cancel semantics, artifacts and the replay-then-follow NDJSON stream.
 *
 * Nothing runs on its own: the test moves jobs along (`moveTo`, `appendChunk`, `complete`, `fail`) and
 * waits for what the server has seen with `until`, which re-checks its condition on every server event,
 * so no test sleeps to synchronize.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Scripted trouble for the next requests, in order: drop the connection before doing anything
 * ("drop"), do the work but lose the answer ("lose-response", the case Idempotency-Key exists for),
 * or answer with this status and body.
 */
export type Fault = "drop" | "lose-response" | { status: number; body: string; contentType?: string };

interface StoredArtifact {
  contentType: string;
  bytes: Buffer;
}

interface JobRecord {
  seq: number;
  job: Job;
  /** The current attempt's bytes (a restart starts them over). */
  chunks: Buffer[];
  files: Map<string, StoredArtifact>;
  /** Times the job entered `working`: what the gateway numbers attempts by (`X-Foreman-Attempt`). */
  answers: number;
  /** Open responses of `GET /jobs/<id>/stream`, so a test can cut them. */
  followers: Set<http.ServerResponse>;
}

interface ParkedPoll {
  res: http.ServerResponse;
  timer: ReturnType<typeof setTimeout>;
}

const EVENTS = JOB_STATES.map((state) => `job.${state}`);
const MAX_WAIT_SECONDS = 60;

export class FakeJobsServer {
  readonly requests: RecordedRequest[] = [];
  readonly baseUrl: string;
  private readonly records = new Map<string, JobRecord>();
  private readonly idempotency = new Map<string, { body: string; id: string }>();
  private readonly parked = new Map<string, Set<ParkedPoll>>();
  private readonly streams = new Map<string, number>();
  private readonly faults: Fault[] = [];
  private readonly events = new EventEmitter();
  private seq = 0;

  private constructor(
    private readonly server: http.Server,
    private readonly token: string | undefined,
  ) {
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.events.setMaxListeners(0);
  }

  static async start(options: { token?: string } = {}): Promise<FakeJobsServer> {
    let fake: FakeJobsServer | undefined;
    const server = http.createServer((req, res) => {
      fake?.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: String(error) });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    fake = new FakeJobsServer(server, options.token);
    return fake;
  }

  async close(): Promise<void> {
    for (const polls of this.parked.values()) for (const poll of polls) clearTimeout(poll.timer);
    this.parked.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  // -------------------------------------------------------------------------------------------
  // What the test drives and observes
  // -------------------------------------------------------------------------------------------

  /** The job as the API shows it. */
  job(id: string): Job {
    return this.view(this.record(id));
  }

  /** Moves a job the way the worker would (`loading` when claimed, `working` when the target answers). */
  moveTo(id: string, state: "queued" | "loading" | "working"): Job {
    const { job } = this.record(id);
    job.state = state;
    job[`${state}_at`] = new Date().toISOString();
    if (state === "loading") job.attempts += 1;
    if (state === "working") this.record(id).answers += 1;
    return this.changed(id);
  }

  /**
   * The job's attempt was cut short and it is back in the queue (the worker died): its next attempt
   * generates anew. Resumed streams of the old attempt end there, as the gateway's do at the next `#start`.
   */
  restart(id: string): Job {
    const record = this.record(id);
    record.job.state = "queued";
    record.chunks = [];
    this.events.emit(`restart:${id}`);
    return this.changed(id);
  }

  /** Destroys the connections of the job's open streams, as a network failure would, mid-chunk or not. */
  cutStreams(id: string): number {
    const followers = [...this.record(id).followers];
    for (const res of followers) res.socket?.destroy();
    return followers.length;
  }

  appendChunk(id: string, chunk: object): void {
    this.appendBytes(id, Buffer.from(`${JSON.stringify(chunk)}\n`));
  }

  /** Raw bytes, written to followers as one `write` each. */
  appendBytes(id: string, bytes: Uint8Array): void {
    this.record(id).chunks.push(Buffer.from(bytes));
    this.changed(id);
  }

  complete(id: string, result: object, options: { inline?: boolean } = {}): Job {
    const record = this.record(id);
    const { job } = record;
    const { total_duration, load_duration, prompt_eval_count, prompt_eval_duration, eval_count, eval_duration } =
      result as Record<string, number | undefined>;
    job.metrics = { total_duration, load_duration, prompt_eval_count, prompt_eval_duration, eval_count, eval_duration };
    const bytes = Buffer.from(JSON.stringify(result));
    this.addArtifact(id, "result.json", "application/json", bytes);
    if (options.inline === false) {
      job.result = null;
      job.result_url = `/jobs/${id}/artifacts/result.json`;
    } else {
      job.result = result as unknown as Job["result"];
    }
    return this.end(id, "done", null);
  }

  fail(id: string, error: string): Job {
    return this.end(id, "failed", error);
  }

  /** A running job whose cancel was requested stops (what the worker does once the target stopped). */
  finishCancel(id: string): Job {
    return this.end(id, "canceled", null);
  }

  addArtifact(id: string, name: string, contentType: string, bytes: Uint8Array): void {
    const record = this.record(id);
    record.files.set(name, { contentType, bytes: Buffer.from(bytes) });
    record.job.artifacts = [...record.files].map(([fileName, file]) => ({
      name: fileName,
      content_type: file.contentType,
      size: file.bytes.length,
      url: `/jobs/${id}/artifacts/${encodeURIComponent(fileName)}`,
    }));
  }

  /** Answers the job's held long polls now with the job as it is, as if their `wait` had run out. */
  releasePolls(id: string): void {
    for (const poll of this.parked.get(id) ?? []) this.answerPoll(id, poll);
  }

  /** Ids of every job submitted, oldest first. */
  jobIds(): string[] {
    return [...this.records.values()].sort((a, b) => a.seq - b.seq).map((r) => r.job.id);
  }

  parkedPolls(id: string): number {
    return this.parked.get(id)?.size ?? 0;
  }

  openStreams(id: string): number {
    return this.streams.get(id) ?? 0;
  }

  /** The next requests meet these faults, one each, before anything else happens to them. */
  injectFaults(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  requestsTo(method: string, pathPrefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix));
  }

  /** Resolves once `condition` holds, re-checking it on every server event; rejects after `timeoutMs`. */
  until(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (condition()) {
        resolve();
        return;
      }
      const check = () => {
        if (!condition()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake /jobs server: timed out waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off("tick", check);
      };
      this.events.on("tick", check);
    });
  }

  // -------------------------------------------------------------------------------------------
  // The HTTP side
  // -------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", "http://fake");
    this.requests.push({
      method: req.method ?? "",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
    });
    this.tick();

    const fault = this.faults.shift();
    if (fault === "drop") {
      req.socket.destroy();
      return;
    }
    if (fault === "lose-response") {
      res.writeHead = (() => {
        req.socket.destroy();
        return res;
      }) as typeof res.writeHead;
      res.end = (() => res) as typeof res.end;
    } else if (fault) {
      res.writeHead(fault.status, { "content-type": fault.contentType ?? "application/json; charset=utf-8" });
      res.end(fault.body);
      return;
    }

    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      sendJson(res, 401, {
        error: "unauthorized: missing or wrong bearer token (Authorization: Bearer <FOREMAN_API_TOKEN>)",
      });
      return;
    }

    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const method = req.method;
    if (parts[0] !== "jobs") return notFound(res);
    if (parts.length === 1 && method === "POST") return this.submit(req, res, body);
    if (parts.length === 1 && method === "GET") return this.list(res, url.searchParams);
    const id = parts[1] ?? "";
    const record = this.records.get(id);
    if (parts.length === 2 && method === "GET") {
      if (!record) return jobNotFound(res, id);
      return this.get(res, record, url.searchParams);
    }
    if (parts.length === 3 && parts[2] === "cancel" && method === "POST") {
      if (!record) return jobNotFound(res, id);
      return this.cancel(res, record);
    }
    if (parts.length === 3 && parts[2] === "stream" && method === "GET") {
      if (!record) return jobNotFound(res, id);
      return this.stream(res, record, url.searchParams);
    }
    if (parts.length === 4 && parts[2] === "artifacts" && method === "GET") {
      if (!record) return jobNotFound(res, id);
      const name = parts[3] ?? "";
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name) || name.includes("..")) {
        return sendJson(res, 400, { error: `artifact name ${JSON.stringify(name)} is not allowed` }, id);
      }
      const file = record.files.get(name);
      if (!file) return sendJson(res, 404, { error: `job ${id} has no artifact ${name}` }, id);
      res.writeHead(200, { "content-type": file.contentType, "x-foreman-job-id": id });
      res.end(file.bytes);
      return;
    }
    notFound(res);
  }

  private submit(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
    let request: Record<string, unknown>;
    try {
      const parsed = JSON.parse(body) as unknown;
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
      request = parsed as Record<string, unknown>;
    } catch (error) {
      return sendJson(res, 400, { error: `invalid JSON body: ${(error as Error).message}` });
    }
    const problem = validateJobRequest(request);
    if (problem) return sendJson(res, 400, { error: problem });

    const key = req.headers["idempotency-key"];
    const canonical = canonicalJson(request);
    if (typeof key === "string") {
      const earlier = this.idempotency.get(key);
      if (earlier && earlier.body !== canonical) {
        return sendJson(res, 409, {
          error: `Idempotency-Key ${JSON.stringify(key)} was already used with a different request body`,
        });
      }
      if (earlier) return sendJson(res, 200, this.job(earlier.id), earlier.id);
    }

    const seq = ++this.seq;
    const now = new Date().toISOString();
    const id = fakeUlid(Date.now());
    const webhook = request.webhook as { url: string; events?: string[] } | undefined;
    const job: Job = {
      id,
      kind: request.messages !== undefined ? "chat" : "generate",
      api: "ollama",
      mode: "async",
      model: request.model as string,
      state: "queued",
      created_at: now,
      queued_at: now,
      loading_at: null,
      working_at: null,
      ended_at: null,
      attempts: 0,
      max_attempts: 3,
      error: null,
      metadata: (request.metadata as Record<string, unknown> | undefined) ?? null,
      metrics: null,
      result: null,
      artifacts: [],
      webhook: webhook
        ? { url: webhook.url, events: (webhook.events as JobEventType[] | undefined) ?? null, deliveries: [] }
        : null,
    };
    this.records.set(id, { seq, job, chunks: [], files: new Map(), answers: 0, followers: new Set() });
    if (typeof key === "string") this.idempotency.set(key, { body: canonical, id });
    this.tick();
    res.setHeader("location", `/jobs/${id}`);
    // The gateway's 202 leaves the queue position out (it costs a read of the queue); GET has it.
    const { position: _position, ...created } = this.job(id);
    sendJson(res, 202, created, id);
  }

  private list(res: http.ServerResponse, query: URLSearchParams) {
    const state = query.get("state");
    if (state !== null && !(JOB_STATES as readonly string[]).includes(state)) {
      return sendJson(res, 400, { error: `state must be one of ${JOB_STATES.join(", ")}` });
    }
    const limitText = query.get("limit") ?? "20";
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 100) {
      return sendJson(res, 400, { error: "limit must be an integer from 1 to 100" });
    }
    const cursor = query.get("cursor");
    let before = Number.POSITIVE_INFINITY;
    if (cursor !== null) {
      before = Number(Buffer.from(cursor, "base64url").toString("utf8").replace(/^seq:/, ""));
      if (!Number.isInteger(before)) return sendJson(res, 400, { error: "cursor is not one this server gave out" });
    }
    const model = query.get("model");
    const matching = [...this.records.values()]
      .filter(
        (r) => r.seq < before && (state === null || r.job.state === state) && (model === null || r.job.model === model),
      )
      .sort((a, b) => b.seq - a.seq);
    const page = matching.slice(0, limit);
    const last = page.at(-1);
    const next_cursor =
      matching.length > limit && last ? Buffer.from(`seq:${last.seq}`, "utf8").toString("base64url") : null;
    sendJson(res, 200, { jobs: page.map((r) => this.view(r)), next_cursor });
  }

  private get(res: http.ServerResponse, record: JobRecord, query: URLSearchParams) {
    const id = record.job.id;
    const waitText = query.get("wait");
    const wait = waitText === null ? 0 : Number(waitText);
    if (waitText !== null && (waitText === "" || !Number.isFinite(wait) || wait < 0)) {
      return sendJson(res, 400, { error: `wait must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}` }, id);
    }
    if (wait === 0 || isTerminalState(record.job.state)) return sendJson(res, 200, this.view(record), id);

    const poll: ParkedPoll = {
      res,
      timer: setTimeout(() => this.answerPoll(id, poll), Math.min(wait, MAX_WAIT_SECONDS) * 1000),
    };
    const polls = this.parked.get(id) ?? new Set();
    polls.add(poll);
    this.parked.set(id, polls);
    res.on("close", () => {
      clearTimeout(poll.timer);
      if (polls.delete(poll)) this.tick();
    });
    this.tick();
  }

  private answerPoll(id: string, poll: ParkedPoll): void {
    clearTimeout(poll.timer);
    this.parked.get(id)?.delete(poll);
    if (!poll.res.writableEnded) sendJson(poll.res, 200, this.job(id), id);
    this.tick();
  }

  private cancel(res: http.ServerResponse, record: JobRecord) {
    const { job } = record;
    if (isTerminalState(job.state)) {
      return sendJson(res, 409, { error: `job ${job.id} has already ended (${job.state})` }, job.id);
    }
    if (job.state === "queued") this.end(job.id, "canceled", null);
    else {
      job.cancel_requested = true;
      this.changed(job.id);
    }
    sendJson(res, 200, this.view(record), job.id);
  }

  private stream(res: http.ServerResponse, record: JobRecord, query: URLSearchParams): void {
    const id = record.job.id;
    // `after`/`attempt`: a resumed stream, as the gateway serves it (packages/gateway/src/jobs/stream-resume.ts).
    const resume = query.has("after") || query.has("attempt");
    const headers: Record<string, string> = { "content-type": "application/x-ndjson", "x-foreman-job-id": id };
    let skipBytes = 0;
    if (resume) {
      const attempt = ["queued", "loading"].includes(record.job.state) ? record.answers + 1 : record.answers;
      headers["x-foreman-attempt"] = String(attempt);
      const given = query.get("attempt");
      if (given !== null && Number(given) !== attempt) {
        res.setHeader("x-foreman-attempt", String(attempt));
        sendJson(res, 409, { error: `job ${id} is on attempt ${attempt}, not ${given}` }, id);
        return;
      }
      skipBytes = offsetAfterLines(Buffer.concat(record.chunks), Number(query.get("after") ?? "0"));
    }
    res.writeHead(200, headers);
    res.flushHeaders();
    let sent = 0;
    const chunks = record.chunks;
    const follow = () => {
      while (sent < chunks.length) {
        const piece = chunks[sent++]!;
        const skipped = Math.min(skipBytes, piece.length);
        skipBytes -= skipped;
        if (skipped < piece.length) res.write(piece.subarray(skipped));
      }
      if (!isTerminalState(record.job.state)) return;
      // Like the gateway: a job that did not end done closes its stream with an Ollama error line.
      if (record.job.state !== "done") {
        res.write(`${JSON.stringify({ error: record.job.error ?? `job ${record.job.state}` })}\n`);
      }
      res.end();
      this.events.off(`job:${id}`, follow);
    };
    const stop = () => res.end();
    this.events.on(`job:${id}`, follow);
    if (resume) this.events.on(`restart:${id}`, stop);
    record.followers.add(res);
    this.streams.set(id, this.openStreams(id) + 1);
    res.on("close", () => {
      record.followers.delete(res);
      this.events.off(`job:${id}`, follow);
      this.events.off(`restart:${id}`, stop);
      this.streams.set(id, this.openStreams(id) - 1);
      this.tick();
    });
    this.tick();
    follow();
  }

  // -------------------------------------------------------------------------------------------

  private record(id: string): JobRecord {
    const record = this.records.get(id);
    if (!record) throw new Error(`fake /jobs server: no job ${id}`);
    return record;
  }

  private end(id: string, state: "done" | "failed" | "canceled", error: string | null): Job {
    const { job } = this.record(id);
    job.state = state;
    job.error = error;
    job.ended_at = new Date().toISOString();
    const view = this.changed(id);
    this.releasePolls(id);
    return view;
  }

  private changed(id: string): Job {
    this.events.emit(`job:${id}`);
    this.tick();
    return this.job(id);
  }

  private tick(): void {
    this.events.emit("tick");
  }

  private view(record: JobRecord): Job {
    const job: Job = structuredClone(record.job);
    if (job.state === "queued") {
      const queued = [...this.records.values()].filter((r) => r.job.state === "queued").sort((a, b) => a.seq - b.seq);
      job.position = queued.indexOf(record) + 1;
    }
    return job;
  }
}

/** Validation errors name the field, in the gateway's words (packages/gateway/src/jobs/job-request.ts). */
function validateJobRequest(request: Record<string, unknown>): string | null {
  if (typeof request.model !== "string" || request.model === "") return "model is required";
  const hasMessages = request.messages !== undefined;
  const hasPrompt = request.prompt !== undefined;
  if (hasMessages && hasPrompt) return "send exactly one of messages (chat) or prompt (generate), not both";
  if (!hasMessages && !hasPrompt) return "one of messages (chat) or prompt (generate) is required";
  if (hasMessages && !Array.isArray(request.messages)) return "messages must be an array";
  if (hasPrompt && typeof request.prompt !== "string") return "prompt must be a string";
  if (request.metadata !== undefined && (typeof request.metadata !== "object" || Array.isArray(request.metadata))) {
    return "metadata must be a JSON object";
  }
  const webhook = request.webhook as { url?: unknown; events?: unknown } | undefined;
  if (webhook !== undefined) {
    if (typeof webhook.url !== "string" || !/^https?:\/\//.test(webhook.url)) {
      return "webhook.url must be a valid uri with a scheme matching the http|https pattern";
    }
    if (webhook.events !== undefined) {
      if (!Array.isArray(webhook.events)) return "webhook.events must be an array";
      const unknown = webhook.events.find((event) => !EVENTS.includes(event as string));
      if (unknown !== undefined) return `webhook.events: unknown event ${String(unknown)}`;
    }
  }
  return null;
}

/** The byte offset just past the first `lines` newlines of `bytes` (its length when it has fewer). */
function offsetAfterLines(bytes: Buffer, lines: number): number {
  let offset = 0;
  for (let n = 0; n < lines; n++) {
    const newline = bytes.indexOf(10, offset);
    if (newline < 0) return bytes.length;
    offset = newline + 1;
  }
  return offset;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, jobId?: string): void {
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  if (jobId) headers["x-foreman-job-id"] = jobId;
  res.writeHead(status, headers);
  res.end(JSON.stringify(body));
}

function jobNotFound(res: http.ServerResponse, id: string): void {
  sendJson(res, 404, { error: `job ${id} not found` });
}

/** Unknown routes answer as gin does in Ollama (and the gateway): plain text. */
function notFound(res: http.ServerResponse): void {
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end("404 page not found");
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const pieces: Buffer[] = [];
  for await (const piece of req) pieces.push(piece as Buffer);
  return Buffer.concat(pieces).toString("utf8");
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** ULID-shaped: 10 characters of time, 16 of randomness (order comes from `seq`, not from the id). */
function fakeUlid(now: number): string {
  let time = "";
  for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + [...randomBytes(16)].map((b) => CROCKFORD[b % 32]).join("");
}

/** Rejects when `promise` takes longer than `ms`: every await on the client in these tests is bounded. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
