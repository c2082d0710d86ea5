import { ForemanError, type Logger } from "@foreman/shared";
import type { ErrorRequestHandler, RequestHandler } from "express";

/** Unknown routes answer like Ollama's router does (gin's default 404 body is plain text). */
export const notFoundHandler: RequestHandler = (_req, res) => {
  res.status(404).type("text/plain; charset=utf-8").send("404 page not found");
};

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message?: string;
}

/**
 * The one place errors become HTTP: typed errors keep their status and message, body-parser failures
 * become a 4xx naming the problem, and anything unexpected is a 500 whose details stay in the log.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof ForemanError) {
      res.status(err.status).json({ error: err.message });
      return;
    }
    const parserError = err as BodyParserError;
    if (parserError.type === "entity.parse.failed") {
      res.status(400).json({ error: `invalid JSON body: ${parserError.message ?? "parse error"}` });
      return;
    }
    if (parserError.type === "entity.too.large") {
      res.status(413).json({ error: "request body too large" });
      return;
    }
    if (parserError.expose && parserError.status && parserError.status < 500) {
      res.status(parserError.status).json({ error: parserError.message ?? "bad request" });
      return;
    }
    logger.error("unhandled error", {
      method: req.method,
      path: req.path,
      error: (err as Error)?.stack ?? String(err),
    });
    res.status(500).json({ error: "internal error" });
  };
}
