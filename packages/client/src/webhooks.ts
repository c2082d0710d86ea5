import { ForemanClientError } from "./errors.js";
import type { Job, JobEventType } from "./types.js";

/**
 * Receiving foreman's webhooks: the Standard Webhooks scheme (https://www.standardwebhooks.com) checked with
 * Web Crypto, so the same code runs in Node.js ≥ 20, browsers, Deno, Bun and edge runtimes, and the client
 * keeps its promise of no dependencies.
 *
 * A delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`: one or more
 * space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the bytes of the `whsec_`
 * secret's base64. More than one signature appears while a sender rotates its secret.
 */

/** The body foreman POSTs for each state a job enters. */
export interface WebhookEvent {
  type: JobEventType;
  /** When the job entered the state, ISO 8601. */
  timestamp: string;
  /** The job as it was at that moment; terminal events carry the inline result or the artifact URLs. */
  data: Job;
}

/** Headers as `fetch` (`Headers`), Node's `http` (`req.headers`) or a plain object give them. */
export type WebhookHeaders = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

/** The raw request body, exactly as received: a JSON parser's output cannot be verified. */
export type WebhookBody = string | Uint8Array | ArrayBuffer;

export interface VerifyWebhookOptions {
  /** How far the timestamp may be from now, either way; default 300 (five minutes). */
  toleranceSeconds?: number;
  /** The clock, in milliseconds; default `Date.now`. */
  now?: () => number;
}

export type WebhookFailure =
  | "missing-headers"
  | "bad-timestamp"
  | "timestamp-too-old"
  | "timestamp-too-new"
  | "no-matching-signature"
  | "bad-body"
  | "body-too-large";

/**
 * A delivery that must not be trusted: answer it with 400 (the middleware and `webhookReader` do). The
 * message says what was wrong, never the secret or a signature.
 */
export class WebhookVerificationError extends ForemanClientError {
  override name = "WebhookVerificationError";
  readonly reason: WebhookFailure;
  /** The HTTP status a receiver should answer with: 413 for a body over the limit, else 400. */
  readonly status: number;

  constructor(reason: WebhookFailure, message: string) {
    super(message);
    this.reason = reason;
    this.status = reason === "body-too-large" ? 413 : 400;
  }
}

const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** Web Crypto's key type, named without the DOM library (Node's types declare it under another name). */
type HmacKey = Awaited<ReturnType<typeof globalThis.crypto.subtle.importKey>>;
const SECRET_PREFIX = "whsec_";

/**
 * Verifies a delivery and returns its event. Rejects with a `WebhookVerificationError` when a header is
 * missing, the timestamp is not within the tolerance (a replayed old delivery), no `v1` signature matches
 * (a tampered body, a wrong secret) or the body is not a foreman event; with a `TypeError` when `secret` is
 * not a `whsec_…` secret at all (a configuration mistake, not a bad delivery).
 */
export async function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  rawBody: WebhookBody,
  options: VerifyWebhookOptions = {},
): Promise<WebhookEvent> {
  return await verifyWithKey(await importSecret(secret), headers, rawBody, options);
}

/** Parses the secret once and verifies deliveries with it (what the middleware and the reader use). */
export function webhookVerifier(
  secret: string,
  options: VerifyWebhookOptions = {},
): (headers: WebhookHeaders, rawBody: WebhookBody) => Promise<WebhookEvent> {
  const key = importSecret(secret);
  // A bad secret is reported by the first verification too; this keeps it from being an unhandled rejection.
  key.catch(() => {});
  return async (headers, rawBody) => await verifyWithKey(await key, headers, rawBody, options);
}

async function verifyWithKey(
  key: HmacKey,
  headers: WebhookHeaders,
  rawBody: WebhookBody,
  options: VerifyWebhookOptions,
): Promise<WebhookEvent> {
  const id = header(headers, "webhook-id");
  const timestampText = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestampText || !signatures) {
    throw new WebhookVerificationError(
      "missing-headers",
      "missing webhook-id, webhook-timestamp or webhook-signature header",
    );
  }
  const timestamp = checkTimestamp(timestampText, options);
  const body = bodyBytes(rawBody);
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const expected = toBase64(new Uint8Array(await globalThis.crypto.subtle.sign("HMAC", key, signed)));

  let matched = false;
  for (const versioned of signatures.split(" ")) {
    const comma = versioned.indexOf(",");
    if (comma < 0 || versioned.slice(0, comma) !== "v1") continue;
    // Every candidate is compared in full, so the time taken says nothing about which one matched or how much.
    if (constantTimeEqual(versioned.slice(comma + 1), expected)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError("no-matching-signature", "no matching webhook signature");
  return parseEvent(body);
}

async function importSecret(secret: string): Promise<HmacKey> {
  if (typeof secret !== "string" || secret === "") {
    throw new TypeError("the webhook secret must be a whsec_… string");
  }
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = fromBase64(encoded);
  if (bytes === null || bytes.length === 0) {
    // The secret itself is never part of the message.
    throw new TypeError("the webhook secret must be whsec_ followed by base64 (the value is not shown)");
  }
  return await globalThis.crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  // A header sent twice arrives as an array from some servers: signatures from both lines count.
  return Array.isArray(value) ? value.join(" ") : value;
}

function checkTimestamp(text: string, options: VerifyWebhookOptions): number {
  if (!/^\d{1,15}$/.test(text)) {
    throw new WebhookVerificationError("bad-timestamp", "webhook-timestamp must be Unix seconds");
  }
  const timestamp = Number(text);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = Math.floor((options.now ?? Date.now)() / 1000);
  if (now - timestamp > tolerance) {
    throw new WebhookVerificationError("timestamp-too-old", `webhook timestamp is more than ${tolerance} s old`);
  }
  if (timestamp - now > tolerance) {
    throw new WebhookVerificationError("timestamp-too-new", `webhook timestamp is more than ${tolerance} s ahead`);
  }
  return timestamp;
}

function bodyBytes(body: WebhookBody): Uint8Array {
  if (typeof body === "string") return new TextEncoder().encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError(
    "the webhook body must be the raw request body (string, Uint8Array or ArrayBuffer), not a parsed object",
  );
}

function parseEvent(body: Uint8Array): WebhookEvent {
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new WebhookVerificationError("bad-body", "the webhook body is not JSON");
  }
  const { type, data } = (event ?? {}) as { type?: unknown; data?: unknown };
  if (typeof type !== "string" || typeof data !== "object" || data === null) {
    throw new WebhookVerificationError("bad-body", "the webhook body is not a foreman event ({type, timestamp, data})");
  }
  return event as WebhookEvent;
}

function constantTimeEqual(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) difference |= (a.charCodeAt(i) || 0) ^ b.charCodeAt(i);
  return difference === 0;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Strict base64 (padding optional), or null: `atob` alone accepts whitespace and other oddities. */
function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return null;
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------------------------

/** What the receivers need of a request: Node's `IncomingMessage` and Express's `Request` both fit. */
export interface WebhookRequestLike extends AsyncIterable<Uint8Array | string> {
  headers: Record<string, string | string[] | undefined>;
  /** Set by a body parser that ran before; `express.raw()` leaves the raw bytes here. */
  body?: unknown;
  readableEnded?: boolean;
}

/** What the middleware needs of a response: Node's `ServerResponse` and Express's `Response` both fit. */
export interface WebhookResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

export interface WebhookReceiverOptions extends VerifyWebhookOptions {
  /** Bodies larger than this are refused (413) without being buffered further; default 16 MiB. */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A helper for Node's `http`: `const receive = webhookReader(secret)`, then `const event = await receive(req)`
 * reads the request's body and verifies it. Rejects with a `WebhookVerificationError` (answer its `status`,
 * 400 or 413) for a delivery that must not be trusted.
 */
export function webhookReader(
  secret: string,
  options: WebhookReceiverOptions = {},
): (req: WebhookRequestLike) => Promise<WebhookEvent> {
  const verify = webhookVerifier(secret, options);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  return async (req) => await verify(req.headers, await rawBodyOf(req, maxBytes));
}

/** An Express request after the middleware: the verified event, and its id for telling a redelivery apart. */
export interface VerifiedWebhookRequest {
  webhookEvent: WebhookEvent;
  /** The `webhook-id` header: the same for every delivery of one event (deliveries are at least once). */
  webhookId: string;
}

/**
 * Express middleware: verifies the delivery and puts the event on `req.webhookEvent` (and its id on
 * `req.webhookId`), or answers 400 `{"error": "…"}` itself. Mount it with the raw body parser, since
 * the signature covers the exact bytes:
 *
 *   app.post("/hooks/foreman", express.raw({ type: "application/json" }), webhookMiddleware(secret), handler)
 *
 * Without a body parser before it, it reads the body itself; after `express.json()` it cannot verify and
 * passes an error to `next`.
 */
export function webhookMiddleware(
  secret: string,
  options: WebhookReceiverOptions = {},
): (req: WebhookRequestLike, res: WebhookResponseLike, next: (error?: unknown) => void) => void {
  const verify = webhookVerifier(secret, options);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  return (req, res, next) => {
    const receive = async () => {
      const event = await verify(req.headers, await rawBodyOf(req, maxBytes));
      Object.assign(req, { webhookEvent: event, webhookId: header(req.headers, "webhook-id") } satisfies Partial<
        VerifiedWebhookRequest & WebhookRequestLike
      >);
    };
    receive().then(
      () => next(),
      (error: unknown) => {
        if (!(error instanceof WebhookVerificationError)) {
          next(error);
          return;
        }
        res.statusCode = error.status;
        res.setHeader("content-type", "application/json; charset=utf-8");
        res.end(JSON.stringify({ error: error.message }));
      },
    );
  };
}

async function rawBodyOf(req: WebhookRequestLike, maxBytes: number): Promise<Uint8Array | string> {
  const parsed = req.body;
  if (typeof parsed === "string" || parsed instanceof Uint8Array) return parsed;
  if (parsed !== undefined && !(typeof parsed === "object" && parsed !== null && Object.keys(parsed).length === 0)) {
    throw new TypeError(
      'webhook verification needs the raw body: mount express.raw({ type: "application/json" }) before it, not express.json()',
    );
  }
  if (req.readableEnded) {
    throw new TypeError('the webhook request body was already read: mount express.raw({ type: "application/json" })');
  }
  const pieces: Uint8Array[] = [];
  let size = 0;
  const encoder = new TextEncoder();
  for await (const piece of req) {
    const bytes = typeof piece === "string" ? encoder.encode(piece) : piece;
    size += bytes.length;
    if (size > maxBytes) {
      throw new WebhookVerificationError("body-too-large", `the webhook body is larger than ${maxBytes} bytes`);
    }
    pieces.push(bytes);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const piece of pieces) {
    body.set(piece, at);
    at += piece.length;
  }
  return body;
}
