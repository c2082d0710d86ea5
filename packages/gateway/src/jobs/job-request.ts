import { createHash } from "node:crypto";
import {
  type ForemanConfig,
  JOB_EVENT_TYPES,
  literalWebhookAddressProblem,
  type NewJob,
  ValidationError,
  WEBHOOK_SECRET_FORM,
  webhookAddressPolicy,
  webhookSecretProblem,
} from "@foreman/shared";
import Joi from "joi";

const message = Joi.object({
  role: Joi.string().required(),
  content: Joi.string().allow("").optional(),
  images: Joi.array().items(Joi.string()).optional(),
  thinking: Joi.string().allow("").optional(),
  tool_calls: Joi.array().optional(),
  tool_name: Joi.string().optional(),
}).unknown(true);

/** POST /jobs: what a batch caller may send, with errors that name the field. */
export const jobRequestSchema = Joi.object({
  model: Joi.string().min(1).required(),
  messages: Joi.array().items(message),
  prompt: Joi.string().allow(""),
  system: Joi.string().allow(""),
  suffix: Joi.string().allow(""),
  images: Joi.array().items(Joi.string()),
  options: Joi.object().unknown(true),
  format: Joi.alternatives(Joi.string().valid("json"), Joi.object().unknown(true)),
  tools: Joi.array().items(Joi.object().unknown(true)),
  think: Joi.alternatives(Joi.boolean(), Joi.string().valid("high", "medium", "low", "max")),
  keep_alive: Joi.alternatives(Joi.string(), Joi.number()),
  stream: Joi.boolean(),
  metadata: Joi.object().unknown(true),
  webhook: Joi.object({
    url: Joi.string()
      .uri({ scheme: ["http", "https"] })
      .required(),
    // Checked here rather than with a pattern: joi's pattern message would quote the secret back.
    secret: Joi.string()
      .custom((v: string) => {
        if (webhookSecretProblem(v)) throw new Error("bad secret");
        return v;
      })
      .messages({ "any.custom": `{{#label}} must be ${WEBHOOK_SECRET_FORM}` }),
    events: Joi.array()
      .items(Joi.string().valid(...JOB_EVENT_TYPES))
      .min(1)
      .unique(),
  }),
})
  .xor("messages", "prompt")
  .messages({
    "object.xor": "send exactly one of messages (chat) or prompt (generate), not both",
    "object.missing": "one of messages (chat) or prompt (generate) is required",
  });

const METADATA_MAX_BYTES = 16 * 1024;

export interface ParsedJobRequest {
  job: Omit<NewJob, "idempotencyKey">;
  readonly requestHash: string;
}

/** Validates a POST /jobs body into a new async job (or throws a ValidationError naming the field). */
export function parseJobRequest(body: unknown, config: Pick<ForemanConfig, "webhookAllowedHosts">): ParsedJobRequest {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new ValidationError("request body must be a JSON object");
  const { value, error } = passesJobSchema(body)
    ? { value: body, error: undefined }
    : jobRequestSchema.validate(body, { abortEarly: true, convert: false });
  if (error) {
    const detail = error.details[0]!;
    const field = detail.path.join(".");
    // joi quotes the label first ("\"webhook.url\" must be …"); say it the way a caller reads it.
    const text = detail.message.replace(/^"([^"]+)"/, "$1");
    throw new ValidationError(
      detail.type.startsWith("object.") && !field ? text : text.startsWith(field) ? text : `${field}: ${text}`,
    );
  }
  const v = value as Record<string, unknown> & { webhook?: { url: string; secret?: string; events?: string[] } };
  if (v.metadata !== undefined && Buffer.byteLength(JSON.stringify(v.metadata)) > METADATA_MAX_BYTES) {
    throw new ValidationError(`metadata must be at most ${METADATA_MAX_BYTES} bytes of JSON`);
  }
  if (v.webhook) assertDeliverableUrl(v.webhook.url, config.webhookAllowedHosts);

  const kind = v.messages ? "chat" : "generate";
  const { metadata, webhook, stream: _ignored, ...rest } = v;
  // The worker always streams from the target, so the relay (and GET /jobs/<id>/stream) has every chunk.
  const request = { ...rest, stream: true };
  let requestHash: string | undefined;
  return {
    job: {
      kind,
      api: "ollama",
      mode: "async",
      model: v.model as string,
      request,
      metadata: (metadata as Record<string, unknown> | undefined) ?? null,
      webhook: webhook ? { url: webhook.url, secret: webhook.secret, events: webhook.events } : null,
    },
    // Hashed when first read: only a request with an Idempotency-Key is ever compared with another, and the
    // canonical form and its digest cost POST /jobs several percent of its CPU.
    get requestHash() {
      requestHash ??= createHash("sha256").update(canonicalJson(body)).digest("hex");
      return requestHash;
    },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === "string";
const isNonEmptyText = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const THINK_LEVELS = new Set<unknown>([true, false, "high", "medium", "low", "max"]);

/** The schema's rule for each top-level key a common body uses; a key not here sends the body to joi. */
const FAST_KEYS: Record<string, (v: unknown) => boolean> = {
  model: isNonEmptyText,
  messages: (v) => Array.isArray(v) && v.every(passesMessageSchema),
  prompt: isText,
  system: isText,
  suffix: isText,
  images: (v) => Array.isArray(v) && v.every(isNonEmptyText),
  options: isObject,
  format: (v) => v === "json" || isObject(v),
  tools: (v) => Array.isArray(v) && v.every(isObject),
  think: (v) => THINK_LEVELS.has(v),
  keep_alive: isNonEmptyText,
  stream: (v) => typeof v === "boolean",
  metadata: isObject,
};

function passesMessageSchema(m: unknown): boolean {
  if (!isObject(m) || !isNonEmptyText(m.role)) return false;
  const { content, images, thinking, tool_calls, tool_name } = m;
  return (
    (content === undefined || isText(content)) &&
    (images === undefined || (Array.isArray(images) && images.every(isNonEmptyText))) &&
    (thinking === undefined || isText(thinking)) &&
    (tool_calls === undefined || Array.isArray(tool_calls)) &&
    (tool_name === undefined || isNonEmptyText(tool_name))
  );
}

/**
 * True when the body certainly passes the joi schema above, checked without it: joi's validation made two
 * fifths of what POST /jobs allocated (about 20 KB a job) and most of its validation CPU. It answers false
 * for anything it does not cover (a webhook, a numeric keep_alive, an unknown key, any invalid value), and
 * joi then decides and words the error; a test checks that whatever it accepts, joi accepts unchanged
 * (ADR 0030).
 */
export function passesJobSchema(body: unknown): boolean {
  if (!isObject(body)) return false;
  let inputs = 0;
  for (const key of Object.keys(body)) {
    const rule = Object.hasOwn(FAST_KEYS, key) ? FAST_KEYS[key] : undefined;
    if (!rule?.(body[key])) return false;
    if (key === "messages" || key === "prompt") inputs++;
  }
  return inputs === 1 && "model" in body;
}

/**
 * What can be known of a webhook URL before any delivery: it parses as a URL the way the worker will
 * parse it, and a literal IP host is one the address policy allows (names are checked at each delivery,
 * on the addresses they resolve to then). Messages name the host, never the URL's user or password.
 */
function assertDeliverableUrl(text: string, allowedHosts: readonly string[]): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ValidationError("webhook.url must be a valid uri");
  }
  const problem = literalWebhookAddressProblem(url, webhookAddressPolicy(allowedHosts));
  if (problem) throw new ValidationError(`webhook.url: ${problem}`);
}

/** JSON with object keys sorted, so the same body hashes the same whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
