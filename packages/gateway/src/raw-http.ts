import type http from "node:http";

/**
 * Request and response plumbing for the routes served on the raw Node request (POST /jobs, the pass-through
 * routes, the proxy's own errors), which skip Express for speed: they answer JSON, and Ollama's error shape,
 * the way Express's error handler does.
 */

/** Sends `payload` as JSON with its length, so headers and body leave in one write. */
export function sendJson(
  res: http.ServerResponse,
  status: number,
  payload: unknown,
  headers: http.OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answers `{"error": message}`, unless an answer has already begun or the caller has gone. */
export function sendJsonError(
  res: http.ServerResponse,
  status: number,
  message: string,
  headers: http.OutgoingHttpHeaders = {},
): void {
  if (res.headersSent || res.destroyed || res.writableEnded) return;
  sendJson(res, status, { error: message }, headers);
}

/** The one wording of a 413, for the raw paths and Express's body parser alike. */
export function bodyTooLargeMessage(limit: number): string {
  return `request body too large (limit ${limit} bytes, FOREMAN_BODY_LIMIT)`;
}

/**
 * Reads a request body of at most `limit` bytes and hands it to `done`. A larger body is answered with a
 * 413 as soon as it passes the limit (nothing more is kept; the rest is read and dropped so the connection
 * stays usable) and `done` is never called.
 */
export function readCappedBody(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  limit: number,
  done: (body: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) {
      req.off("data", onData);
      req.resume();
      sendJsonError(res, 413, bodyTooLargeMessage(limit));
      return;
    }
    chunks.push(chunk);
  };
  req.on("data", onData);
  req.on("end", () => {
    if (size <= limit) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  });
}
