import http from "node:http";
import type { Duplex } from "node:stream";
import type { ForemanConfig, Logger } from "@foreman/shared";

type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** How often a refused connection is reported at most: a flood must not turn into a flood of log lines. */
const DROP_LOG_INTERVAL_MS = 60_000;

/**
 * The gateway's HTTP server with its connection bounds. A caller must send its headers within
 * FOREMAN_HEADERS_TIMEOUT_MS and its whole request within FOREMAN_REQUEST_TIMEOUT_MS (else 408 and the
 * connection closes), so slow senders cannot pile up; both bound only the request, never the answer, so
 * long polls, relayed streams and /api/pull progress run as long as they need (Node ≥ 18 semantics). Past
 * FOREMAN_MAX_CONNECTIONS a new connection is closed at once, before it costs a parser or a request.
 */
export function createGatewayServer(
  listener: Listener,
  config: Pick<ForemanConfig, "maxConnections" | "headersTimeoutMs" | "requestTimeoutMs" | "keepAliveTimeoutMs">,
  logger: Logger,
): http.Server {
  const server = http.createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // Node enforces both deadlines on this sweep (30 s by default, which would let a slow sender outstay
      // a short deadline by that much); a sweep over the open connections is cheap.
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(config.headersTimeoutMs / 4))),
    },
    listener,
  );
  server.on("clientError", answerClientError);
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.maxConnections = config.maxConnections;
  let dropped = 0;
  let lastReport = Number.NEGATIVE_INFINITY;
  server.on("drop", () => {
    dropped++;
    const now = Date.now();
    if (now - lastReport < DROP_LOG_INTERVAL_MS) return;
    logger.warn("connection limit reached; new connections are closed at once", {
      max_connections: config.maxConnections,
      dropped,
    });
    lastReport = now;
    dropped = 0;
  });
  return server;
}

/**
 * What Node answers itself, before any handler runs (a malformed request line or header, headers too
 * large, a request too slow), in Ollama's error shape like every other refusal; Node's own answers carry
 * no body. The connection is closed: after a parse error its stream cannot be trusted.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, error] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "request not received in time (FOREMAN_HEADERS_TIMEOUT_MS, FOREMAN_REQUEST_TIMEOUT_MS)"]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [431, "request headers too large"]
        : [400, `malformed HTTP request (${err.code ?? "parse error"})`];
  const body = JSON.stringify({ error });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
