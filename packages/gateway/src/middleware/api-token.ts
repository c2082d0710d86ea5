import { createHash, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "@foreman/shared";
import type { RequestHandler } from "express";

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * When FOREMAN_API_TOKEN is set, every route mounted after this needs `Authorization: Bearer <token>`.
 * Both sides are hashed first so the comparison is constant-time whatever the lengths.
 */
export function requireApiToken(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  const expected = digest(token);
  return (req, _res, next) => {
    const header = req.headers.authorization ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match?.[1] || !timingSafeEqual(digest(match[1].trim()), expected)) {
      next(
        new UnauthorizedError(
          "unauthorized: missing or wrong bearer token (Authorization: Bearer <FOREMAN_API_TOKEN>)",
        ),
      );
      return;
    }
    next();
  };
}
