import type http from "node:http";
import type { Logger } from "@foreman/shared";
import type { ErrorRequestHandler, RequestHandler } from "express";
import { sendJsonError } from "../raw-http.js";
import { errorResponse } from "./error-response.js";

/** Unknown routes answer like Ollama's router does (gin's default 404 body is plain text). */
export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).type("text/plain; charset=utf-8").send("404 page not found");
};

/** Express's end of the error mapping (error-response.ts): every error leaves as `{"error": "…"}`. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const answer = errorResponse(err);
    if (answer.unexpected) {
      logger.error("unhandled error", {
        method: req.method,
        path: req.path,
        error: (err as Error)?.stack ?? String(err),
      });
    }
    if (answer.headers) res.set(answer.headers);
    res.status(answer.status).json({ error: answer.error });
  };
}

/**
 * The raw routes' end of the same mapping (POST /jobs, the generation routes, queued embeddings), answered
 * as `errorHandler` answers Express's: an answer already begun is cut, so the caller sees it broke.
 */
export function answerRawError(res: http.ServerResponse, err: unknown, logger: Logger, path: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorResponse(err);
  if (answer.unexpected) logger.error("unhandled error", { path, error: (err as Error)?.stack ?? String(err) });
  sendJsonError(res, answer.status, answer.error, answer.headers);
}
