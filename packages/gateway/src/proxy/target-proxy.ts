import http from "node:http";
import https from "node:https";
import { type Logger, requestTarget } from "@foreman/shared";
import { sendJsonError } from "../raw-http.js";

export interface TargetProxyOptions {
  targetUrl: string;
  token: string | undefined;
  connectTimeoutMs: number;
  logger: Logger;
}

export interface ForwardOptions {
  /** Path and query on the target; defaults to the incoming URL. */
  path?: string;
  /** A body to send instead of streaming the incoming one (already read and possibly rewritten). */
  body?: Buffer;
  /** A label for logs. */
  route?: string;
}

// RFC 9110 §7.6.1: connection-specific headers are never forwarded by a proxy.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * The end-to-end headers of a request or response as the flat name/value list Node's writers take as is
 * (`http.request` and `writeHead` copy an object's headers into a map one `setHeader` at a time; a list goes
 * straight to the header block, and reading `rawHeaders` spares building the parsed headers object).
 */
function forwardableHeaders(raw: string[], drop: ReadonlySet<string>, out: string[]): string[] {
  let connectionListed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== "connection") continue;
    connectionListed ??= [];
    for (const token of raw[i + 1]!.split(",")) {
      const listed = token.trim().toLowerCase();
      if (listed) connectionListed.push(listed);
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower) || connectionListed?.includes(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

// The caller's Authorization is for foreman (FOREMAN_API_TOKEN), never for the target; Host is the target's;
// the body's framing is set below.
const DROP_REQUEST = new Set(["authorization", "host", "content-length"]);
const DROP_RESPONSE = new Set<string>();

/**
 * Streams a request to the Ollama target and its answer back, unchanged: status, content type and body
 * are piped, never buffered whole, over a keep-alive pool. A caller who goes away aborts the upstream
 * request; a target that does not accept the connection within the connect timeout, or refuses it,
 * gets a quick 502 with Ollama's error shape instead of a hang.
 */
export function createTargetProxy(options: TargetProxyOptions) {
  const target = new URL(options.targetUrl);
  const isHttps = target.protocol === "https:";
  const agent = new (isHttps ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
  const request = isHttps ? https.request : http.request;
  const basePath = target.pathname.replace(/\/+$/, "");
  const auth = options.token ? `Bearer ${options.token}` : undefined;
  // What Node's client would put in Host itself, were the headers not passed as a list.
  const host = target.host;

  function forward(req: http.IncomingMessage, res: http.ServerResponse, forwardOptions: ForwardOptions = {}): void {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    const route = forwardOptions.route ?? url;
    const headers = forwardableHeaders(req.rawHeaders, DROP_REQUEST, ["Host", host]);
    if (auth) headers.push("Authorization", auth);
    const body = forwardOptions.body;
    // How the body is framed upstream: the caller's Transfer-Encoding is hop-by-hop, so a streamed body
    // without a length is re-chunked on this hop.
    let streamed = false;
    if (body) {
      headers.push("Content-Length", String(body.length));
    } else if (req.headers["content-length"] !== undefined) {
      headers.push("Content-Length", req.headers["content-length"]);
      streamed = true;
    } else if (req.headers["transfer-encoding"]) {
      headers.push("Transfer-Encoding", "chunked");
      streamed = true;
    }

    // A body read whole, or none, can be sent again; a streamed one has gone with its first attempt.
    const replayable = body !== undefined || req.method === "GET" || req.method === "HEAD";
    let upstream: http.ClientRequest | undefined;
    requestTarget({
      connectTimeoutMs: options.connectTimeoutMs,
      send() {
        upstream = request({
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port || (isHttps ? 443 : 80),
          method: req.method,
          path: basePath + (forwardOptions.path ?? url),
          headers,
          agent,
        });
        if (streamed) req.pipe(upstream);
        else upstream.end(body);
        return upstream;
      },
      mayRetry: () => replayable && !res.headersSent && !res.destroyed,
      onResponse(answer) {
        // Stream chunk by chunk: headers go out at once so NDJSON progress (e.g. /api/pull) reaches the caller live.
        const headers = forwardableHeaders(answer.rawHeaders, DROP_RESPONSE, []);
        // Given a list, writeHead merges it one setHeader at a time into headers already set on `res` (by
        // Express, say), where a repeated header would keep only its last value; only the dispatcher's raw
        // response, with none set, takes the list as is.
        if (res.getHeaderNames().length === 0) res.writeHead(answer.statusCode ?? 502, headers);
        else res.writeHead(answer.statusCode ?? 502, headerMap(headers));
        relay(answer, res);
      },
      onError(err) {
        if (res.headersSent) {
          // Mid-stream loss: end the caller's response abruptly so it sees a truncated stream, not a clean end.
          res.destroy();
          return;
        }
        if (res.destroyed || res.writableEnded) return;
        const detail = err.code ? `${err.code}: ${err.message}` : err.message;
        options.logger.warn("target request failed", { route, error: detail });
        sendJsonError(res, 502, `ollama target unreachable: ${detail}`);
      },
    });

    // The caller went away before the answer was complete: stop the target's work too.
    res.on("close", () => {
      if (!res.writableFinished) upstream?.destroy();
    });
  }

  return {
    forward,
    close(): void {
      agent.destroy();
    },
  };
}

/** A header list as a map, repeated names as arrays, for a response that already has headers set. */
function headerMap(list: string[]): http.OutgoingHttpHeaders {
  const map: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!.toLowerCase();
    const value = list[i + 1]!;
    const seen = map[name];
    map[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return map;
}

/**
 * Copies the target's answer to the caller with backpressure, as `pipe` does, with three listeners where
 * `pipe` adds and later removes about a dozen on every request. The caller going away is handled by the
 * caller's close listener (it destroys the upstream request); a target that breaks off mid-answer ends the
 * caller's response abruptly, so the caller sees a truncated stream rather than a clean end.
 */
function relay(answer: http.IncomingMessage, res: http.ServerResponse): void {
  answer.on("data", (chunk: Buffer) => {
    if (!res.write(chunk)) {
      answer.pause();
      res.once("drain", () => answer.resume());
    }
  });
  answer.on("end", () => res.end());
  answer.on("error", () => res.destroy());
}

export type TargetProxy = ReturnType<typeof createTargetProxy>;
