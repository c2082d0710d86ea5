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

function forwardableHeaders(headers: http.IncomingHttpHeaders, drop: Set<string>): http.OutgoingHttpHeaders {
  const connectionListed = String(headers.connection ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name) || connectionListed.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

// The caller's Authorization is for foreman (FOREMAN_API_TOKEN), never for the target; Host is the target's.
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

  function forward(req: http.IncomingMessage, res: http.ServerResponse, forwardOptions: ForwardOptions = {}): void {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    const route = forwardOptions.route ?? url;
    const headers = forwardableHeaders(req.headers, DROP_REQUEST);
    if (auth) headers.authorization = auth;
    const body = forwardOptions.body;
    if (body) {
      headers["content-length"] = body.length;
      delete headers["transfer-encoding"];
    } else if (req.headers["content-length"] !== undefined) {
      headers["content-length"] = req.headers["content-length"];
    } else if (req.headers["transfer-encoding"]) {
      headers["transfer-encoding"] = "chunked";
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
        if (body) upstream.end(body);
        else if (headers["content-length"] === undefined && headers["transfer-encoding"] === undefined) upstream.end();
        else req.pipe(upstream);
        return upstream;
      },
      mayRetry: () => replayable && !res.headersSent && !res.destroyed,
      onResponse(answer) {
        // Stream chunk by chunk: headers go out at once so NDJSON progress (e.g. /api/pull) reaches the caller live.
        res.writeHead(answer.statusCode ?? 502, forwardableHeaders(answer.headers, DROP_RESPONSE));
        answer.pipe(res);
        answer.on("error", () => res.destroy());
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

export type TargetProxy = ReturnType<typeof createTargetProxy>;
