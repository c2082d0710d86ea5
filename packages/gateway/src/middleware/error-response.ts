import { ForemanError, UnavailableError } from "@foreman/shared";
import { bodyTooLargeMessage } from "../raw-http.js";

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message?: string;
  /** The byte limit a too-large body passed. */
  limit?: number;
}

/**
 * The one mapping from an error to an HTTP answer, used by the Express error handler and by the raw
 * fast-path handlers: typed errors keep their status and message, body-parsing failures become a 4xx
 * naming the problem, and anything else is a 500 whose details stay in the log (null message here).
 */
export interface ErrorAnswer {
  status: number;
  error: string;
  unexpected: boolean;
  /** Headers the answer must carry (Retry-After on a 503). */
  headers?: Record<string, string>;
}

export function errorResponse(err: unknown): ErrorAnswer {
  if (err instanceof UnavailableError) {
    return {
      status: err.status,
      error: err.message,
      unexpected: false,
      headers: { "retry-after": String(err.retryAfterSeconds) },
    };
  }
  if (err instanceof ForemanError) return { status: err.status, error: err.message, unexpected: false };
  const storage = storageProblem(err);
  if (storage) return { status: 503, error: storage, unexpected: false };
  // The router could not percent-decode a path parameter (`/jobs/%FF`).
  if (err instanceof URIError) {
    return { status: 400, error: "the path is not valid percent-encoded UTF-8", unexpected: false };
  }
  const parserError = err as BodyParserError;
  if (parserError?.type === "entity.parse.failed") {
    return { status: 400, error: `invalid JSON body: ${parserError.message ?? "parse error"}`, unexpected: false };
  }
  if (parserError?.type === "entity.too.large") {
    const error = parserError.limit === undefined ? "request body too large" : bodyTooLargeMessage(parserError.limit);
    return { status: 413, error, unexpected: false };
  }
  if (parserError?.expose && parserError.status && parserError.status < 500) {
    return { status: parserError.status, error: parserError.message ?? "bad request", unexpected: false };
  }
  return { status: 500, error: "internal error", unexpected: true };
}

/**
 * SQLite's own word for a store that cannot take writes (disk full, read-only file, I/O error, locked past
 * the busy timeout): the request was not accepted, nothing was stored, and trying again later may work.
 */
function storageProblem(err: unknown): string | null {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return null;
  if (code === "SQLITE_FULL") return "the database disk is full; nothing was stored, try again once space is freed";
  if (code.startsWith("SQLITE_READONLY")) return "the database is read-only; nothing was stored";
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
    return "the database is busy; nothing was stored, try again";
  if (code.startsWith("SQLITE_IOERR") || code === "SQLITE_CANTOPEN")
    return "the database cannot be written (I/O error); nothing was stored";
  return null;
}
