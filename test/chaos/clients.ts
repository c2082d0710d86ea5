import http from "node:http";
import type { Cluster } from "./cluster.js";

type Gateway = "gateway-a" | "gateway-b";

/** What one HTTP exchange came to, told apart the way a caller experiences it. */
export type HttpOutcome =
  | { kind: "refused"; error: string }
  | { kind: "cut-before-headers"; error: string }
  | { kind: "response"; status: number; headers: http.IncomingHttpHeaders; body: string; complete: boolean }
  | { kind: "timeout"; gotHeaders: boolean; body: string }
  | { kind: "caller-aborted"; status: number; headers: http.IncomingHttpHeaders; body: string };

/**
 * One request on a fresh connection (no keep-alive pool): a pooled socket to a gateway killed meanwhile
 * would blame the wrong incarnation for a reset.
 */
export function httpCall(
  base: string,
  options: {
    method: string;
    path: string;
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs: number;
    abortAfterFirstChunk?: boolean;
  },
): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const url = new URL(options.path, base);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    let settled = false;
    let timedOut = false;
    let gotHeaders = false;
    const chunks: Buffer[] = [];
    const text = () => Buffer.concat(chunks).toString("utf8");
    const done = (outcome: HttpOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      method: options.method,
      agent: false,
      headers: {
        connection: "close",
        ...(payload !== undefined ? { "content-type": "application/json" } : {}),
        ...options.headers,
      },
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new Error("client timeout"));
    }, options.timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (timedOut) return done({ kind: "timeout", gotHeaders, body: text() });
      if (gotHeaders) return; // the response's close handler reports it
      const error = err.code ?? err.message;
      done(err.code === "ECONNREFUSED" ? { kind: "refused", error } : { kind: "cut-before-headers", error });
    });
    req.on("response", (res) => {
      gotHeaders = true;
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (options.abortAfterFirstChunk && !settled) {
          done({ kind: "caller-aborted", status: res.statusCode ?? 0, headers: res.headers, body: text() });
          req.destroy();
        }
      });
      res.on("error", () => undefined);
      res.on("close", () => {
        if (timedOut) return done({ kind: "timeout", gotHeaders, body: text() });
        done({
          kind: "response",
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: text(),
          complete: res.complete,
        });
      });
    });
    req.end(payload);
  });
}

export const DB_BUSY = /database is locked|SQLITE_BUSY|database is busy/i;

/** How a synchronous caller's request ended. */
export type SyncEnding =
  | "done"
  | "error-line"
  | "error-status"
  | "cut-gateway-killed-before-headers"
  | "cut-gateway-killed-mid-stream"
  | "caller-aborted"
  | "violation";

export type SyncRoute = "ollama-chat" | "ollama-generate" | "openai-chat";

export interface SyncPlan {
  index: number;
  mode: "sync";
  route: SyncRoute;
  stream: boolean;
  model: string;
  tokens: number;
  gateway: Gateway;
  abortAfterFirstChunk: boolean;
}

export interface SyncResult {
  index: number;
  ending: SyncEnding;
  jobId: string | undefined;
  status: number | undefined;
  /** The error text a caller was given, for the report's tally. */
  error: string | undefined;
  violation: string | undefined;
  refusedTries: number;
  dbBusy: boolean;
}

const ROUTE_PATH: Record<SyncRoute, string> = {
  "ollama-chat": "/api/chat",
  "ollama-generate": "/api/generate",
  "openai-chat": "/v1/chat/completions",
};

function syncBody(plan: SyncPlan): Record<string, unknown> {
  const content = `chaos sync job ${plan.index}`;
  if (plan.route === "ollama-generate") {
    return { model: plan.model, prompt: content, stream: plan.stream, options: { num_predict: plan.tokens } };
  }
  if (plan.route === "openai-chat") {
    return { model: plan.model, messages: [{ role: "user", content }], stream: plan.stream, max_tokens: plan.tokens };
  }
  return {
    model: plan.model,
    messages: [{ role: "user", content }],
    stream: plan.stream,
    options: { num_predict: plan.tokens },
  };
}

const other = (g: Gateway): Gateway => (g === "gateway-a" ? "gateway-b" : "gateway-a");

/** Waits between tries of a caller who found no gateway listening (pacing, not synchronization). */
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A synchronous chat or generate, as an Ollama or OpenAI client sends it; a caller who finds its gateway
 * down tries the other one (nothing was sent), and one cut off after sending does not retry.
 */
export async function runSync(cluster: Cluster, plan: SyncPlan, timeoutMs: number): Promise<SyncResult> {
  let gateway = plan.gateway;
  let refusedTries = 0;
  const result = (r: Omit<SyncResult, "index" | "refusedTries">): SyncResult => ({
    index: plan.index,
    refusedTries,
    ...r,
  });
  for (;;) {
    const incarnation = cluster.incarnation(gateway);
    // A gateway being killed may still accept a connection before it dies: that reset is the kill's too.
    const downAtStart = cluster.isDown(gateway);
    const sentAt = Date.now();
    const outcome = await httpCall(cluster.gatewayUrl(gateway), {
      method: "POST",
      path: ROUTE_PATH[plan.route],
      body: syncBody(plan),
      timeoutMs,
      abortAfterFirstChunk: plan.abortAfterFirstChunk,
    });
    const killed = downAtStart || cluster.incarnation(gateway) !== incarnation;
    const where = `${gateway}, ${Date.now() - sentAt} ms after sending`;
    const none = { jobId: undefined, status: undefined, error: undefined, violation: undefined, dbBusy: false };
    if (outcome.kind === "refused") {
      refusedTries++;
      if (refusedTries > 200)
        return result({ ...none, ending: "violation", violation: "no gateway accepted a connection" });
      gateway = other(gateway);
      await pause(Math.min(20 * refusedTries, 250));
      continue;
    }
    if (outcome.kind === "cut-before-headers") {
      if (killed) return result({ ...none, ending: "cut-gateway-killed-before-headers" });
      return result({
        ...none,
        ending: "violation",
        violation: `connection cut before headers (${outcome.error}; ${where}) with no gateway kill`,
      });
    }
    if (outcome.kind === "timeout") {
      return result({
        ...none,
        dbBusy: DB_BUSY.test(outcome.body),
        ending: "violation",
        violation: `no complete answer within ${timeoutMs} ms (${gateway})`,
      });
    }
    const jobId = outcome.headers["x-foreman-job-id"] as string | undefined;
    const dbBusy = DB_BUSY.test(outcome.body);
    const base = { jobId, status: outcome.status, dbBusy, error: undefined, violation: undefined };
    if (outcome.kind === "caller-aborted") return result({ ...base, ending: "caller-aborted" });
    if (!outcome.complete) {
      if (killed) return result({ ...base, ending: "cut-gateway-killed-mid-stream" });
      return result({
        ...base,
        ending: "violation",
        violation: `stream cut after headers (${where}) with no gateway kill: ${tail(outcome.body)}`,
      });
    }
    const judged = judgeBody(plan, outcome.status, String(outcome.headers["content-type"] ?? ""), outcome.body);
    // Every fault here is one foreman recovers from: a caller who has received nothing keeps waiting while
    // its job is retried. A 5xx before any byte is only right once the wait limit or the attempt limit is hit.
    if (
      outcome.status >= 500 &&
      judged.ending === "error-status" &&
      !/did not start within|attempt limit \(\d+\) reached/.test(judged.error ?? "")
    ) {
      return result({
        ...base,
        ...judged,
        ending: "violation",
        violation: `HTTP ${outcome.status} before any byte, for a fault foreman recovers from: ${tail(outcome.body)}`,
      });
    }
    return result({ ...base, ...judged });
  }
}

function tail(body: string): string {
  return JSON.stringify(body.length > 300 ? `…${body.slice(-300)}` : body);
}

/** Whether a complete answer ended as the protocol says: `done`, a final error object, or an error status. */
function judgeBody(
  plan: SyncPlan,
  status: number,
  contentType: string,
  body: string,
): { ending: SyncEnding; error: string | undefined; violation: string | undefined } {
  const bad = (why: string) => ({ ending: "violation" as const, error: undefined, violation: `${why}: ${tail(body)}` });
  if (status < 200 || status >= 300) {
    const parsed = parseJson(body);
    if (typeof parsed?.error === "string") return { ending: "error-status", error: parsed.error, violation: undefined };
    if (typeof parsed?.error?.message === "string")
      return { ending: "error-status", error: parsed.error.message, violation: undefined };
    return bad(`HTTP ${status} without a JSON error body`);
  }
  let last: WireObject | null;
  if (contentType.includes("ndjson")) {
    const lines = body.split("\n").filter((l) => l.trim().length > 0);
    const parsed = lines.map(parseJson);
    if (parsed.some((p) => p === null)) return bad("a stream line that is not a JSON object");
    last = parsed.at(-1) ?? null;
    // The target sent one chunk per token and then `done`: a lost or repeated chunk shows in the count.
    if (last?.done === true && parsed.length - 1 !== plan.tokens) {
      return bad(`${parsed.length - 1} chunks before done, where the target sent ${plan.tokens}`);
    }
  } else if (contentType.includes("event-stream")) {
    const events = body
      .split("\n\n")
      .map((e) => e.trim())
      .filter((e) => e.length > 0 && !e.startsWith(":"));
    const finalEvent = events.at(-1);
    if (finalEvent === "data: [DONE]") return { ending: "done", error: undefined, violation: undefined };
    last = finalEvent?.startsWith("data: ") ? parseJson(finalEvent.slice(6)) : null;
  } else {
    last = parseJson(body);
  }
  if (!last) return bad(`a ${plan.stream ? "stream" : "body"} with no final JSON object`);
  if (typeof last.error === "string") return { ending: "error-line", error: last.error, violation: undefined };
  if (typeof last.error?.message === "string")
    return { ending: "error-line", error: last.error.message, violation: undefined };
  if (last.done === true) {
    if (last.eval_count !== plan.tokens) return bad(`done with eval_count ${last.eval_count}, not ${plan.tokens}`);
    return { ending: "done", error: undefined, violation: undefined };
  }
  return bad(`a ${plan.stream ? "stream" : "body"} that ended without done or an error`);
}

// biome-ignore lint/suspicious/noExplicitAny: a parsed wire object is inspected field by field
type WireObject = Record<string, any>;

function parseJson(text: string): WireObject | null {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

export interface AsyncPlan {
  index: number;
  mode: "async";
  model: string;
  tokens: number;
  chat: boolean;
  gateway: Gateway;
  /** Which signing secret the receiver checks: the job's own, or FOREMAN_WEBHOOK_SECRET. */
  secret: "job" | "default";
  /** Only terminal events, to check the filter as well as delivery. */
  terminalEventsOnly: boolean;
  /** Long-poll the job until it ends, follow its NDJSON stream to the end, or fire and forget. */
  follow: "poll" | "stream" | "none";
  /** Cancel this many ms after it was accepted. */
  cancelAfterMs: number | undefined;
}

export interface AsyncResult {
  index: number;
  jobId: string | undefined;
  /** Every status a gateway answered on this job's routes, with whether it was acceptable. */
  violations: string[];
  submitTries: number;
  cancel: "ok" | "already-ended" | undefined;
  finalState: string | undefined;
  /** How a complete GET /jobs/<id>/stream ended: with the target's `done` chunk or an error line. */
  streamEnd: "done" | "error" | undefined;
  dbBusy: boolean;
}

/**
 * An async job: POST /jobs with an Idempotency-Key (so a caller cut off by a killed gateway retries on the
 * other and gets the same job), then, as planned, a cancel and a long poll until it ends.
 */
export async function runAsync(
  cluster: Cluster,
  plan: AsyncPlan,
  ctx: { seed: number; webhookUrls: { default: string; job: string }; jobSecret: string; deadline: number },
): Promise<AsyncResult> {
  const r: AsyncResult = {
    index: plan.index,
    jobId: undefined,
    violations: [],
    submitTries: 0,
    cancel: undefined,
    finalState: undefined,
    streamEnd: undefined,
    dbBusy: false,
  };
  let gateway = plan.gateway;
  const content = `chaos async job ${plan.index}`;
  const body = {
    model: plan.model,
    ...(plan.chat ? { messages: [{ role: "user", content }] } : { prompt: content }),
    options: { num_predict: plan.tokens },
    metadata: { chaos: plan.index },
    webhook: {
      url: ctx.webhookUrls[plan.secret],
      ...(plan.secret === "job" ? { secret: ctx.jobSecret } : {}),
      ...(plan.terminalEventsOnly ? { events: ["job.done", "job.failed", "job.canceled"] } : {}),
    },
  };
  /**
   * One exchange on the current gateway; a connection cut with no kill of that gateway is a violation. Gives
   * the complete response, or null when the caller should try again on the other gateway.
   */
  const once = async (method: string, path: string, payload?: unknown, headers?: Record<string, string>) => {
    const incarnation = cluster.incarnation(gateway);
    const downAtStart = cluster.isDown(gateway);
    const outcome = await httpCall(cluster.gatewayUrl(gateway), {
      method,
      path,
      body: payload,
      headers,
      timeoutMs: 60_000,
    });
    const killed = downAtStart || cluster.incarnation(gateway) !== incarnation;
    const retry = () => {
      gateway = other(gateway);
      return null;
    };
    if (outcome.kind === "refused") return retry();
    if (outcome.kind === "timeout") {
      r.violations.push(`${method} ${path}: no complete answer within 60000 ms (${gateway})`);
      return retry();
    }
    if (outcome.kind === "cut-before-headers" || (outcome.kind === "response" && !outcome.complete)) {
      if (!killed) r.violations.push(`${method} ${path}: connection cut with no kill of ${gateway}`);
      return retry();
    }
    if (outcome.kind !== "response") return retry();
    if (DB_BUSY.test(outcome.body)) r.dbBusy = true;
    if (outcome.status >= 500) {
      r.violations.push(`${method} ${path} answered ${outcome.status}: ${tail(outcome.body)}`);
      return retry();
    }
    return outcome;
  };
  /** Retries across gateways until an answer (pacing the tries), or null at the run's deadline. */
  const call = async (method: string, path: string, payload?: unknown, headers?: Record<string, string>) => {
    for (let tries = 1; Date.now() < ctx.deadline; tries++) {
      const outcome = await once(method, path, payload, headers);
      if (outcome) return { status: outcome.status, json: parseJson(outcome.body), body: outcome.body, tries };
      await pause(Math.min(20 * tries, 250));
    }
    r.violations.push(`${method} ${path}: no answer before the run's deadline`);
    return null;
  };

  const submitted = await call("POST", "/jobs", body, { "idempotency-key": `chaos-${ctx.seed}-${plan.index}` });
  if (!submitted) return r;
  r.submitTries = submitted.tries;
  if (submitted.status !== 202 && submitted.status !== 200) {
    r.violations.push(`POST /jobs answered ${submitted.status}: ${JSON.stringify(submitted.json)}`);
    return r;
  }
  const id = String(submitted.json?.id);
  r.jobId = id;
  if (plan.cancelAfterMs !== undefined) {
    await pause(plan.cancelAfterMs);
    const canceled = await call("POST", `/jobs/${id}/cancel`);
    if (canceled?.status === 200) r.cancel = "ok";
    else if (canceled?.status === 409) r.cancel = "already-ended";
    else if (canceled) r.violations.push(`POST /jobs/${id}/cancel answered ${canceled.status}`);
  }
  if (plan.follow === "poll") {
    while (Date.now() < ctx.deadline) {
      const polled = await call("GET", `/jobs/${id}?wait=5`);
      if (!polled) break;
      if (polled.status !== 200) {
        r.violations.push(`GET /jobs/${id} answered ${polled.status}`);
        break;
      }
      const state = String(polled.json?.state);
      if (state === "done" || state === "failed" || state === "canceled") {
        r.finalState = state;
        break;
      }
    }
  } else if (plan.follow === "stream") {
    // A follower cut off by a killed gateway attaches again to the other, as a client would.
    const followed = await call("GET", `/jobs/${id}/stream`);
    if (followed && followed.status !== 200) r.violations.push(`GET /jobs/${id}/stream answered ${followed.status}`);
    else if (followed) {
      const lines = followed.body.split("\n").filter((l) => l.trim().length > 0);
      const last = parseJson(lines.at(-1) ?? "");
      if (lines.some((l) => parseJson(l) === null)) {
        r.violations.push(`GET /jobs/${id}/stream sent a line that is not a JSON object: ${tail(followed.body)}`);
      } else if (last?.done === true) r.streamEnd = "done";
      else if (typeof last?.error === "string") r.streamEnd = "error";
      else r.violations.push(`GET /jobs/${id}/stream ended without done or an error line: ${tail(followed.body)}`);
    }
  }
  return r;
}
