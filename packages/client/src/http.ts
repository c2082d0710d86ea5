import { startDeadline } from "./deadline.js";
import {
  ForemanClientError,
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  ForemanTimeoutError,
} from "./errors.js";
import { parseNdjson } from "./ndjson.js";

export interface HttpTransportOptions {
  baseUrl: string;
  token?: string | undefined;
  fetch?: typeof fetch | undefined;
  /** Per request; 0 or Infinity for none. */
  timeoutMs: number;
}

export type QueryValue = string | number | undefined;

export interface HttpRequest {
  method: "GET" | "POST";
  /** A path under the base URL (`/jobs/…`), or an absolute URL the server handed out. */
  path: string;
  query?: Record<string, QueryValue>;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Added to the timeout: a long poll is allowed to take the time it asked for. */
  extraTimeoutMs?: number;
  /** Shown the response (any status) before its body is read: for headers such as `X-Foreman-Attempt`. */
  onResponse?: (response: Response) => void;
}

export interface ResponseBytes {
  contentType: string;
  bytes: Uint8Array;
}

const JSON_TYPE = "application/json";
const NDJSON_TYPE = "application/x-ndjson";

/**
 * The fetch plumbing of the client: URLs, headers, time limits, and the mapping of every way a request can
 * go wrong to one typed error (ForemanHttpError, ForemanNetworkError, ForemanTimeoutError, or the caller's
 * abort reason).
 */
export class HttpTransport {
  private readonly base: URL;
  private readonly basePath: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: HttpTransportOptions) {
    this.base = parseBaseUrl(options.baseUrl);
    this.basePath = this.base.pathname.replace(/\/+$/, "");
    this.token = checkToken(options.token);
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("no fetch available: pass the `fetch` option");
    this.fetchImpl = fetchImpl;
    this.timeoutMs = options.timeoutMs;
  }

  /** The URL a request goes to: paths join the base URL (keeping a prefix such as `/foreman`). */
  resolve(path: string, query?: Record<string, QueryValue>): URL {
    const url = /^https?:\/\//i.test(path)
      ? new URL(path)
      : new URL(this.base.origin + this.basePath + (path.startsWith("/") ? path : `/${path}`));
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  async json<T>(request: HttpRequest): Promise<T> {
    const text = await this.exchange(request, JSON_TYPE, async (response) => await response.text());
    try {
      return JSON.parse(text.value) as T;
    } catch {
      throw new ForemanProtocolError(
        `${request.method} ${text.url}: expected a JSON body, got ${describeBody(text.value, text.contentType)}`,
      );
    }
  }

  async bytes(request: HttpRequest): Promise<ResponseBytes> {
    const answer = await this.exchange(
      request,
      "*/*",
      async (response) => new Uint8Array(await response.arrayBuffer()),
    );
    return { contentType: answer.contentType || "application/octet-stream", bytes: answer.value };
  }

  /**
   * Opens an NDJSON stream and yields its parsed lines. The time limit covers getting the response
   * headers only (a stream follows a job for as long as the job runs); the caller's signal covers it all.
   */
  async *ndjson(request: HttpRequest): AsyncGenerator<unknown, void, undefined> {
    const url = this.resolve(request.path, request.query);
    const deadline = this.startRequestDeadline(request, url);
    try {
      const response = await this.send(request, url, NDJSON_TYPE, deadline.signal);
      request.onResponse?.(response);
      await throwUnlessOk(request.method, url, response);
      deadline.stopTimer();
      if (!response.body) return;
      yield* parseNdjson(response.body);
    } catch (error) {
      throw classify(error, deadline.signal, request.method, url);
    } finally {
      deadline.dispose();
    }
  }

  private async exchange<T>(
    request: HttpRequest,
    accept: string,
    read: (response: Response) => Promise<T>,
  ): Promise<{ value: T; contentType: string; url: string }> {
    const url = this.resolve(request.path, request.query);
    const deadline = this.startRequestDeadline(request, url);
    try {
      const response = await this.send(request, url, accept, deadline.signal);
      await throwUnlessOk(request.method, url, response);
      const value = await read(response);
      return { value, contentType: response.headers.get("content-type") ?? "", url: url.href };
    } catch (error) {
      throw classify(error, deadline.signal, request.method, url);
    } finally {
      deadline.dispose();
    }
  }

  private startRequestDeadline(request: HttpRequest, url: URL) {
    request.signal?.throwIfAborted();
    const timeoutMs = this.timeoutMs > 0 ? this.timeoutMs + (request.extraTimeoutMs ?? 0) : undefined;
    return startDeadline({
      signal: request.signal,
      timeoutMs,
      onTimeout: () => new ForemanTimeoutError({ method: request.method, url: url.href, timeoutMs: timeoutMs ?? 0 }),
    });
  }

  private async send(request: HttpRequest, url: URL, accept: string, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Accept: accept, ...request.headers };
    // The token goes only to the server it belongs to, never to another origin a URL may point at.
    if (this.token && url.origin === this.base.origin) headers["Authorization"] = `Bearer ${this.token}`;
    const init: RequestInit = { method: request.method, headers, signal };
    if (request.body !== undefined) {
      headers["Content-Type"] = JSON_TYPE;
      init.body = JSON.stringify(request.body);
    }
    return await this.fetchImpl(url, init);
  }
}

/** Any non-2xx becomes a ForemanHttpError carrying the status and the server's `error` text unchanged. */
async function throwUnlessOk(method: string, url: URL, response: Response): Promise<void> {
  if (response.ok) return;
  let text = "";
  try {
    text = await response.text();
  } catch {
    // The status is the news; a body cut off on its way is not worth a second error.
  }
  throw new ForemanHttpError({
    status: response.status,
    error: errorText(text, response),
    method,
    url: url.href,
    jobId: response.headers.get("x-foreman-job-id"),
  });
}

/** Ollama's `{"error": "…"}` when the body has it, else the body's own text (gin's "404 page not found"). */
function errorText(body: string, response: Response): string {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string") {
      return (parsed as { error: string }).error;
    }
  } catch {
    // Not JSON: the text itself is the message.
  }
  return body.trim() || `${response.status} ${response.statusText}`.trim();
}

/** Aborts keep the caller's reason (or become the timeout error); anything else unexpected is the network's. */
function classify(error: unknown, signal: AbortSignal, method: string, url: URL): unknown {
  if (signal.aborted) return signal.reason;
  if (error instanceof ForemanClientError) return error;
  return new ForemanNetworkError({ method, url: url.href, cause: error });
}

function parseBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`baseUrl must be an absolute http(s) URL such as http://127.0.0.1:11435`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`baseUrl must be an http or https URL such as http://127.0.0.1:11435`);
  }
  if (url.username || url.password) {
    // fetch refuses URLs with credentials, and they would end up in error messages: say so now.
    throw new TypeError("baseUrl must not contain credentials: pass the API token as the `token` option");
  }
  if (url.search || url.hash) throw new TypeError("baseUrl must not have a query or a fragment");
  return url;
}

/**
 * A header value that `Headers` would reject makes undici throw an error quoting the value: check it here,
 * where the message can leave the token out.
 */
function checkToken(token: string | undefined): string | undefined {
  if (token === undefined || token === "") return undefined;
  if (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError("token must be printable ASCII without spaces (the value is not shown)");
  }
  return token;
}

function describeBody(text: string, contentType: string): string {
  const excerpt = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return `${contentType || "no content type"}: ${JSON.stringify(excerpt)}`;
}
