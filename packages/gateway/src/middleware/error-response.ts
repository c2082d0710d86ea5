import { ForemanError } from "@foreman/shared";
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
export function errorResponse(err: unknown): { status: number; error: string; unexpected: boolean } {
  if (err instanceof ForemanError) return { status: err.status, error: err.message, unexpected: false };
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
