import path from "node:path";
import Joi from "joi";
import { ConfigError } from "./errors.js";

/**
 * Configuration is read once, at start, from FOREMAN_* variables only (never a bare OLLAMA_* one, which
 * belongs to the Ollama host) into a frozen object
 * that is passed to whatever needs it. Each key carries its own example so a bad value can be reported in
 * one line that says how to fix it.
 */
export interface ForemanConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly dbPath: string;
  readonly ollamaUrl: string;
  readonly ollamaToken: string | undefined;
  readonly embedModel: string | undefined;
  readonly apiToken: string | undefined;
  readonly webhookSecret: string | undefined;
  readonly logLevel: LogLevel;
  readonly logFormat: "json" | "pretty";
  readonly dbSynchronous: "normal" | "full";
  readonly heartbeatMs: number;
  readonly workerStaleMs: number;
  readonly pollMs: number;
  readonly connectTimeoutMs: number;
  readonly management: boolean;
  /** Bytes. */
  readonly bodyLimit: number;
  readonly queuePollMs: number;
  readonly starvationMs: number;
  readonly maxAttempts: number;
  readonly relayPollMs: number;
  readonly shutdownGraceMs: number;
  readonly webhookTimeoutMs: number;
  readonly webhookRetryBaseMs: number;
  readonly webhookRetryMaxDelayMs: number;
  readonly webhookRetryForMs: number;
  readonly webhookConcurrency: number;
  readonly webhookAllowedHosts: readonly string[];
  readonly inlineResultMaxBytes: number;
  readonly retentionMs: number;
  readonly retentionSweepMs: number;
  readonly maxWaitSeconds: number;
  readonly targetIdleTimeoutMs: number;
}

export type LogLevel = "error" | "warn" | "info" | "http" | "verbose" | "debug" | "silly";

interface KeySpec {
  field: keyof ForemanConfig;
  schema: Joi.Schema;
  example: string;
  secret?: boolean;
  /** What `.env.example` documents when the default is derived or absent. */
  doc: string;
}

const durationMs = (min: number) => Joi.number().integer().min(min).max(86_400_000);

/** The single table of every FOREMAN_* key: its field, validation, example and documentation. */
export const CONFIG_KEYS: Readonly<Record<string, KeySpec>> = {
  FOREMAN_HOST: {
    field: "host",
    schema: Joi.string().hostname().default("127.0.0.1"),
    example: "0.0.0.0",
    doc: "gateway listen address",
  },
  FOREMAN_PORT: {
    field: "port",
    schema: Joi.number().port().default(11435),
    example: "11435",
    doc: "gateway port",
  },
  FOREMAN_DATA_DIR: {
    field: "dataDir",
    schema: Joi.string().min(1).default("./data"),
    example: "/var/lib/foreman",
    doc: "database, relays and artifacts live here",
  },
  FOREMAN_DB_PATH: {
    field: "dbPath",
    schema: Joi.string().min(1),
    example: "/var/lib/foreman/foreman.db",
    doc: "the SQLite file (default: $FOREMAN_DATA_DIR/foreman.db)",
  },
  FOREMAN_OLLAMA_URL: {
    field: "ollamaUrl",
    schema: Joi.string()
      .uri({ scheme: ["http", "https"] })
      .default("http://127.0.0.1:11434"),
    example: "http://127.0.0.1:11434",
    doc: "the target Ollama server's base URL",
  },
  FOREMAN_OLLAMA_TOKEN: {
    field: "ollamaToken",
    schema: Joi.string().min(1),
    example: "s3cret-token",
    secret: true,
    doc: "sent to the target as Authorization: Bearer …; never logged",
  },
  FOREMAN_EMBED_MODEL: {
    field: "embedModel",
    schema: Joi.string().min(1),
    example: "nomic-embed-text:latest",
    doc: "the always-resident embedding model",
  },
  FOREMAN_API_TOKEN: {
    field: "apiToken",
    schema: Joi.string().min(16),
    example: "a-long-random-string-of-16+-chars",
    secret: true,
    doc: "when set, every route but /, /healthz and /readyz needs Authorization: Bearer <token>",
  },
  FOREMAN_WEBHOOK_SECRET: {
    field: "webhookSecret",
    schema: Joi.string().pattern(/^whsec_[A-Za-z0-9+/]+={0,2}$/, "whsec_<base64>"),
    example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    secret: true,
    doc: "default Standard Webhooks signing secret (whsec_ + base64)",
  },
  FOREMAN_LOG_LEVEL: {
    field: "logLevel",
    schema: Joi.string().valid("error", "warn", "info", "http", "verbose", "debug", "silly").default("info"),
    example: "debug",
    doc: "winston log level",
  },
  FOREMAN_LOG_FORMAT: {
    field: "logFormat",
    schema: Joi.string().valid("json", "pretty").default("json"),
    example: "pretty",
    doc: "json (one JSON object per line) or pretty (readable lines)",
  },
  FOREMAN_DB_SYNCHRONOUS: {
    field: "dbSynchronous",
    schema: Joi.string().valid("normal", "full").default("normal"),
    example: "full",
    doc: "SQLite synchronous mode: normal survives process crashes, full also power loss (ADR 0003)",
  },
  FOREMAN_HEARTBEAT_MS: {
    field: "heartbeatMs",
    schema: durationMs(50).default(1000),
    example: "1000",
    doc: "how often the worker writes its heartbeat (ms)",
  },
  FOREMAN_WORKER_STALE_MS: {
    field: "workerStaleMs",
    schema: durationMs(200).default(10_000),
    example: "10000",
    doc: "a worker heartbeat older than this is stale: readyz fails and a standby worker takes over (ms)",
  },
  FOREMAN_POLL_MS: {
    field: "pollMs",
    schema: durationMs(100).default(5000),
    example: "5000",
    doc: "how often the worker polls the target's /api/version and /api/ps (ms)",
  },
  FOREMAN_CONNECT_TIMEOUT_MS: {
    field: "connectTimeoutMs",
    schema: durationMs(50).default(3000),
    example: "3000",
    doc: "how long to wait for a TCP connection to the target before answering 502 (ms)",
  },
  FOREMAN_MANAGEMENT: {
    field: "management",
    schema: Joi.boolean().truthy("1", "yes", "on").falsy("0", "no", "off").default(false),
    example: "true",
    doc: "pass /api/pull, /api/push, /api/create, /api/copy, /api/delete and /api/blobs/* through to the target",
  },
  FOREMAN_BODY_LIMIT: {
    field: "bodyLimit",
    schema: Joi.string()
      .pattern(/^\d+(b|kb|mb|gb)$/i, "size such as 10mb")
      .custom(parseSize)
      .default(10 * 1024 ** 2),
    example: "10mb",
    doc: "largest request body the gateway accepts for JSON routes",
  },
  FOREMAN_QUEUE_POLL_MS: {
    field: "queuePollMs",
    schema: durationMs(50).default(1000),
    example: "1000",
    doc: "the idle worker's fallback poll for new jobs; a file-system wake-up normally starts them at once (ms)",
  },
  FOREMAN_STARVATION_MS: {
    field: "starvationMs",
    schema: durationMs(0).default(120_000),
    example: "120000",
    doc: "a queued job older than this runs next whatever its model (the drain-by-model starvation bound, ms)",
  },
  FOREMAN_MAX_ATTEMPTS: {
    field: "maxAttempts",
    schema: Joi.number().integer().min(1).max(100).default(3),
    example: "3",
    doc: "how many times an async job may be started before an interruption fails it",
  },
  FOREMAN_RELAY_POLL_MS: {
    field: "relayPollMs",
    schema: durationMs(10).default(250),
    example: "250",
    doc: "a gateway's fallback poll of a relay it follows; a file-system watch normally wakes it at once (ms)",
  },
  FOREMAN_SHUTDOWN_GRACE_MS: {
    field: "shutdownGraceMs",
    schema: durationMs(0).default(10_000),
    example: "10000",
    doc: "on SIGTERM the worker lets its current job finish this long, then hands it back to the queue (ms)",
  },
  FOREMAN_WEBHOOK_TIMEOUT_MS: {
    field: "webhookTimeoutMs",
    schema: durationMs(100).default(10_000),
    example: "10000",
    doc: "a webhook delivery that has not answered within this is a failed attempt (ms)",
  },
  FOREMAN_WEBHOOK_RETRY_BASE_MS: {
    field: "webhookRetryBaseMs",
    schema: durationMs(10).default(1000),
    example: "1000",
    doc: "first webhook retry delay; doubles with each attempt, with jitter (ms)",
  },
  FOREMAN_WEBHOOK_RETRY_MAX_DELAY_MS: {
    field: "webhookRetryMaxDelayMs",
    schema: durationMs(10).default(300_000),
    example: "300000",
    doc: "longest delay between two webhook attempts (ms)",
  },
  FOREMAN_WEBHOOK_RETRY_FOR_MS: {
    field: "webhookRetryForMs",
    schema: durationMs(0).default(86_400_000),
    example: "86400000",
    doc: "a webhook event still failing this long after it was recorded is given up (ms)",
  },
  FOREMAN_WEBHOOK_CONCURRENCY: {
    field: "webhookConcurrency",
    schema: Joi.number().integer().min(1).max(256).default(8),
    example: "8",
    doc: "how many jobs' webhooks are delivered at once (each job's events stay in order)",
  },
  FOREMAN_WEBHOOK_ALLOWED_HOSTS: {
    field: "webhookAllowedHosts",
    schema: Joi.string()
      .pattern(/^(\*\.)?[A-Za-z0-9.-]+(:\d+)?(,\s*(\*\.)?[A-Za-z0-9.-]+(:\d+)?)*$/, "host[,host…]")
      .custom((v: string) => v.split(",").map((h) => h.trim().toLowerCase()))
      .default([]),
    example: "hooks.example.com,*.internal.example",
    doc: "when set, webhook URLs must point at one of these hosts (*.domain matches subdomains); empty allows any",
  },
  FOREMAN_INLINE_RESULT_MAX_BYTES: {
    field: "inlineResultMaxBytes",
    schema: Joi.number().integer().min(0).max(16_777_216).default(65_536),
    example: "65536",
    doc: "a result up to this size is inlined in the job and its terminal webhook; larger ones are only a URL",
  },
  FOREMAN_RETENTION_MS: {
    field: "retentionMs",
    schema: Joi.number().integer().min(60_000).default(604_800_000),
    example: "604800000",
    doc: "finished jobs, their relays and artifacts are deleted this long after they ended (ms; default 7 days)",
  },
  FOREMAN_RETENTION_SWEEP_MS: {
    field: "retentionSweepMs",
    schema: durationMs(100).default(60_000),
    example: "60000",
    doc: "how often the worker looks for expired jobs to prune (ms)",
  },
  FOREMAN_MAX_WAIT_S: {
    field: "maxWaitSeconds",
    schema: Joi.number().integer().min(1).max(3600).default(60),
    example: "60",
    doc: "the longest long poll GET /jobs/<id>?wait= may hold a request (seconds)",
  },
  FOREMAN_TARGET_IDLE_TIMEOUT_MS: {
    field: "targetIdleTimeoutMs",
    schema: durationMs(1000).default(300_000),
    example: "300000",
    doc: "a generation request that receives nothing from the target for this long is abandoned (ms)",
  },
};

/** "10mb" → bytes (the FOREMAN_BODY_LIMIT format, already checked by its pattern). */
function parseSize(value: string): number {
  const m = /^(\d+)(b|kb|mb|gb)$/i.exec(value)!;
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[m[2]!.toLowerCase() as "b"];
  return Number(m[1]) * unit;
}

export const SECRET_KEYS: readonly string[] = Object.entries(CONFIG_KEYS)
  .filter(([, spec]) => spec.secret)
  .map(([key]) => key);

function describeProblem(err: Joi.ValidationError, secretValue?: string): string {
  const detail = err.details[0];
  if (!detail) return "is invalid";
  // joi's messages start with the quoted label ("\"value\" must be ..."); keep only the predicate.
  const problem = detail.message.replace(/^"[^"]*"\s*/, "");
  // Some joi messages quote the value itself ("with value ... fails to match"); a secret must not be echoed.
  return secretValue ? problem.split(secretValue).join("[redacted]") : problem;
}

/**
 * Parses FOREMAN_* variables from `env` into a frozen config. Throws a ConfigError whose message is
 * one line: the variable, what is wrong with its value, and an example of a good one. Secret values are
 * never echoed.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<ForemanConfig> = {},
): ForemanConfig {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
    const raw = env[key];
    const input = raw === undefined || raw === "" ? undefined : raw;
    const { value, error } = spec.schema.validate(input, { convert: true });
    if (error) {
      const shown = spec.secret ? "" : ` (got ${JSON.stringify(raw)})`;
      throw new ConfigError(
        `${key} ${describeProblem(error, spec.secret ? raw : undefined)}${shown}; example: ${key}=${spec.example}`,
      );
    }
    out[spec.field] = value;
  }
  const dataDir = path.resolve(String(out.dataDir));
  out.dataDir = dataDir;
  out.dbPath = out.dbPath ? path.resolve(String(out.dbPath)) : path.join(dataDir, "foreman.db");
  out.ollamaUrl = String(out.ollamaUrl).replace(/\/+$/, "");
  if ((out.workerStaleMs as number) <= (out.heartbeatMs as number) * 2) {
    throw new ConfigError(
      `FOREMAN_WORKER_STALE_MS must be more than twice FOREMAN_HEARTBEAT_MS (got ${out.workerStaleMs} and ${out.heartbeatMs}); example: FOREMAN_WORKER_STALE_MS=${(out.heartbeatMs as number) * 10}`,
    );
  }
  return Object.freeze({ ...(out as unknown as ForemanConfig), ...overrides });
}

/** The config with every secret replaced, safe to log or print. */
export function redactConfig(config: ForemanConfig): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) {
    const field = CONFIG_KEYS[key]?.field;
    if (field && copy[field] !== undefined) copy[field] = "[redacted]";
  }
  return copy;
}

/** The secret values present in a config, for the logger's last-line-of-defence redaction. */
export function configSecrets(config: ForemanConfig): string[] {
  return SECRET_KEYS.map((key) => config[CONFIG_KEYS[key]!.field]).filter(
    (v): v is string => typeof v === "string" && v.length > 0,
  );
}
