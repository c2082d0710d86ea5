import { isUtf8 } from "node:buffer";
import type http from "node:http";
import { ValidationError } from "@foreman/shared";
import express, { type RequestHandler } from "express";

/**
 * How deeply a request body's arrays and objects may nest. JSON.parse copes with any depth, but what
 * follows it does not: JSON.stringify, the request hash and joi recurse, and 5,000 levels overflow the
 * stack (a 500). Real requests (messages, tool and format schemas) stay far below this.
 */
export const MAX_JSON_DEPTH = 256;

const OPEN_BRACKETS = [0x5b, 0x7b]; // [ {

/** Whether `body`'s arrays and objects nest deeper than `max` (brackets inside strings do not count). */
export function nestsDeeperThan(body: Buffer, max: number): boolean {
  // Most bodies hold fewer brackets than the bound, which no nesting can exceed: count them natively first.
  let opens = 0;
  for (const bracket of OPEN_BRACKETS) {
    for (let i = body.indexOf(bracket); i !== -1 && opens <= max; i = body.indexOf(bracket, i + 1)) opens++;
  }
  if (opens <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** Refuses, with a 400 that says why, a body that is not UTF-8 or nests deeper than MAX_JSON_DEPTH. */
export function assertAcceptableJson(body: Buffer, utf8 = true): void {
  if (utf8 && !isUtf8(body)) throw new ValidationError("request body is not valid UTF-8");
  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
    throw new ValidationError(`request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
  }
}

/** The raw fast paths' parse: the same checks and messages as the Express parser below. */
export function parseJsonBody(body: Buffer): unknown {
  assertAcceptableJson(body);
  // As Express's parser does: an empty body is an empty object, and the validation names what is missing.
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new ValidationError(`invalid JSON body: ${(err as Error).message}`);
  }
}

/**
 * Whether the raw fast path can read this body as it is: not compressed and UTF-8 (or no charset). Any other
 * body goes through Express's parser, which inflates it, decodes its charset, or refuses it with a 415.
 */
export function isPlainUtf8Body(headers: http.IncomingHttpHeaders): boolean {
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity") return false;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(headers["content-type"] ?? "")?.[1];
  return charset === undefined || /^utf-?8$/i.test(charset);
}

const bodySizes = new WeakMap<http.IncomingMessage, number>();

/** The size in bytes of the body the JSON parser read for `req` (0 when none was read). */
export function jsonBodyBytes(req: http.IncomingMessage): number {
  return bodySizes.get(req) ?? 0;
}

/**
 * Express's JSON parser with foreman's checks. Any content type is read as JSON (`curl -d` sends
 * form-urlencoded, and Ollama reads the body as JSON regardless); a declared non-UTF-8 charset is
 * decoded by the parser and not held to UTF-8.
 */
export function jsonBody(limit: number): RequestHandler {
  return express.json({
    limit,
    type: () => true,
    verify: (req, _res, body, encoding) => {
      bodySizes.set(req, body.length);
      assertAcceptableJson(body, String(encoding).toLowerCase().replace("-", "") === "utf8");
    },
  });
}
