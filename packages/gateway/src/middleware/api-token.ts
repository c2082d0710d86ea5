import { createHash, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "@foreman/shared";
import type { RequestHandler } from "express";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time check of `Authorization: Bearer <token>`; both sides are hashed so lengths do not leak. */
export function isAuthorized(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  return Boolean(match?.[1]) && timingSafeEqual(digest(match![1]!.trim()), digest(token));
}

/** When FOREMAN_API_TOKEN is set, every route mounted after this needs `Authorization: Bearer <token>`. */
export function requireApiToken(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  return (req, _res, next) => {
    if (!isAuthorized(req.headers.authorization, token)) {
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
