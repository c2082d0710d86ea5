import type { Logger } from "@foreman/shared";
import type { ErrorRequestHandler, RequestHandler } from "express";
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
