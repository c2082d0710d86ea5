import { CliError, EXIT, UnreachableError } from "./exit-codes.js";
import { formatDuration } from "./format.js";

/** One HTTP service the CLI talks to: the foreman gateway, or the Ollama target. */
export interface Endpoint {
  /** Who answered, or did not, in messages: "foreman", "the target". */
  label: string;
  baseUrl: string;
  token: string | undefined;
  /** Appended to "cannot reach" messages: what to check. */
  reachHint: string;
  /** Appended to 401 messages: which token to fix. */
  authHint: string;
  fetch?: typeof fetch;
}

export interface HttpCall {
  method?: "GET" | "POST";
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Until the whole answer is in (for a stream: until its headers are); default 30 s, 0 for none. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The service answered with a non-2xx status; the message is its `error` text, unchanged. */
export class HttpStatusError extends CliError {
  override name = "HttpStatusError";
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message, EXIT.failure);
  }
}

/** A JSON exchange: the parsed body of a 2xx answer, or a CliError that says what went wrong. */
export async function requestJson<T>(endpoint: Endpoint, call: HttpCall): Promise<T> {
  const { response, url, settle } = await send(endpoint, call, "application/json");
  try {
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(
        `${endpoint.label} answered ${call.method ?? "GET"} ${url.pathname} with something other than JSON`,
      );
    }
  } catch (error) {
    throw settle(error);
  } finally {
    settle(null);
  }
}

/**
 * Opens a streamed answer (NDJSON, server-sent events) and hands back its body. The time limit covers the
 * response headers only; a stream lasts as long as it lasts, and the caller's signal ends it.
 */
export async function openStream(
  endpoint: Endpoint,
  call: HttpCall,
  accept: string,
): Promise<ReadableStream<Uint8Array>> {
  const { response, settle } = await send(endpoint, call, accept, { streaming: true });
  settle(null);
  if (!response.body) return new ReadableStream({ start: (controller) => controller.close() });
  return response.body;
}

interface Sent {
  response: Response;
  url: URL;
  /** Stops the timer; given an error, turns it into the CLI's own (a timeout, a lost connection). */
  settle(error: unknown): unknown;
}

async function send(endpoint: Endpoint, call: HttpCall, accept: string, mode = { streaming: false }): Promise<Sent> {
  const url = new URL(endpoint.baseUrl + call.path);
  for (const [key, value] of Object.entries(call.query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  const method = call.method ?? "GET";
  const headers: Record<string, string> = { Accept: accept, ...call.headers };
  if (endpoint.token) headers["Authorization"] = `Bearer ${endpoint.token}`;
  const init: RequestInit = { method, headers };
  if (call.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(call.body);
  }
  const timeoutMs = call.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  let timedOut = false;
  const timer =
    timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs)
      : undefined;
  const onCallerAbort = () => controller.abort(call.signal?.reason);
  call.signal?.addEventListener("abort", onCallerAbort, { once: true });
  init.signal = controller.signal;
  const forget = () => {
    clearTimeout(timer);
    if (!mode.streaming) call.signal?.removeEventListener("abort", onCallerAbort);
  };
  const translate = (error: unknown): unknown => {
    if (call.signal?.aborted) return call.signal.reason;
    if (error instanceof CliError) return error;
    if (timedOut) {
      return new UnreachableError(
        `${endpoint.label} did not answer ${method} ${url.pathname} within ${formatDuration(timeoutMs)} (${endpoint.baseUrl})`,
      );
    }
    return new UnreachableError(
      `cannot reach ${endpoint.label} at ${endpoint.baseUrl}: ${networkDetail(error)}. ${endpoint.reachHint}`,
    );
  };
  const settle = (error: unknown) => {
    forget();
    return error === null ? null : translate(error);
  };
  try {
    call.signal?.throwIfAborted();
    const response = await (endpoint.fetch ?? globalThis.fetch)(url, init);
    if (!response.ok) throw await statusError(endpoint, method, url, response);
    return { response, url, settle };
  } catch (error) {
    throw settle(error);
  }
}

async function statusError(endpoint: Endpoint, method: string, url: URL, response: Response): Promise<HttpStatusError> {
  let body = "";
  try {
    body = await response.text();
  } catch {
    // The status is the news.
  }
  const error = errorText(body) ?? (`${response.status} ${response.statusText}`.trim() || "error");
  const where = `${endpoint.label} answered ${method} ${url.pathname} with ${response.status}`;
  if (response.status === 401) return new HttpStatusError(401, error, `${where} (${error}): ${endpoint.authHint}`);
  if (response.status === 404 && body.trim() !== "" && errorText(body) === undefined) {
    // Not Ollama's or foreman's JSON shape: most likely a route this version does not have.
    return new HttpStatusError(404, error, `${where}: no such route (an older version?)`);
  }
  return new HttpStatusError(response.status, error, `${error} (${where})`);
}

/** Ollama's and foreman's `{"error": "…"}`, when the body has it. */
function errorText(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
      return (parsed as { error: string }).error;
    }
  } catch {
    // Not JSON.
  }
  return undefined;
}

/** Node's fetch fails with `TypeError("fetch failed")`; the useful part (ECONNREFUSED, …) is in its causes. */
export function networkDetail(error: unknown): string {
  let current: unknown = error;
  let message = error instanceof Error ? error.message : String(error);
  let code: string | undefined;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const withCode = current as Error & { code?: unknown };
    if (code === undefined && typeof withCode.code === "string") code = withCode.code;
    if (current.message && current.message !== "fetch failed") message = current.message;
    current = current.cause;
  }
  return code && !message.includes(code) ? `${code}: ${message}` : message || "network error";
}
