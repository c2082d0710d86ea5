import net from "node:net";
import path from "node:path";
import Joi from "joi";
import { ConfigError } from "./errors.js";
import { parseWebhookAllowlist } from "./webhook-address-policy.js";
import { WEBHOOK_DEFAULTS } from "./webhook-defaults.js";
import { webhookSecretProblem } from "./webhook-secret.js";

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
  /** The wake action for a sleeping target: an HTTP request to this URL (may hold credentials). */
  readonly wakeUrl: string | undefined;
  readonly wakeMethod: "GET" | "POST" | "PUT";
  /** The wake action for a sleeping target: a Wake-on-LAN magic packet to this MAC (aa:bb:cc:dd:ee:ff). */
  readonly wakeMac: string | undefined;
  readonly wakeBroadcast: { readonly address: string; readonly port: number };
  readonly wakeIntervalMs: number;
  readonly management: boolean;
  /** Bytes. */
  readonly bodyLimit: number;
  readonly queuePollMs: number;
  readonly starvationMs: number;
  /** The target's model slots (its OLLAMA_MAX_LOADED_MODELS): one stays for the embedder, the rest rotate. */
  readonly targetModelSlots: number;
  /** Whether the drain groups jobs by runner options as well as model (off only for comparison). */
  readonly drainByRunnerOptions: boolean;
  readonly maxAttempts: number;
  readonly relayPollMs: number;
  readonly syncWaitMs: number;
  readonly syncKeepaliveMs: number;
  readonly targetDownProbeMaxMs: number;
  /** Characters. */
  readonly targetLineLimit: number;
  readonly shutdownGraceMs: number;
  readonly webhookTimeoutMs: number;
  readonly webhookRetryBaseMs: number;
  readonly webhookRetryMaxDelayMs: number;
  readonly webhookRetryForMs: number;
  readonly webhookConcurrency: number;
  readonly webhookEndpointConcurrency: number;
  readonly webhookDisableAfterMs: number;
  readonly webhookDisabledForMs: number;
  readonly webhookAllowedHosts: readonly string[];
  readonly inlineResultMaxBytes: number;
  readonly retentionMs: number;
  readonly syncRetentionMs: number;
  readonly retentionSweepMs: number;
  readonly maxWaitSeconds: number;
  readonly targetIdleTimeoutMs: number;
  readonly maxQueuedJobs: number;
  /** Bytes. */
  readonly maxQueuedBytes: number;
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxLongPolls: number;
  readonly maxStreamFollowers: number;
  readonly dbCheckMs: number;
}

export type LogLevel = "error" | "warn" | "info" | "http" | "verbose" | "debug" | "silly";

interface KeySpec {
  field: keyof ForemanConfig;
  schema: Joi.Schema;
  example: string;
  secret?: boolean;
  /** How a bad value is shown in the error line, when part of it must not be (a password in a URL). */
  shown?: (raw: string) => string;
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
    shown: withoutUserInfo,
    doc: "the target Ollama server's base URL (no user:password@; use FOREMAN_OLLAMA_TOKEN)",
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
    schema: Joi.string().custom((v: string) => {
      const problem = webhookSecretProblem(v);
      if (problem) throw new Error(problem);
      return v;
    }),
    example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    secret: true,
    doc: "default Standard Webhooks signing secret (whsec_ + base64 of 24 to 64 bytes)",
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
  FOREMAN_WAKE_URL: {
    field: "wakeUrl",
    schema: Joi.string().uri({ scheme: ["http", "https"] }),
    example: "http://192.168.1.2:8123/api/webhook/wake-studio",
    // A wake URL often carries its credentials (user:password@, a token in the path or query).
    secret: true,
    doc: "while jobs wait on an unreachable target, the worker sends an HTTP request here to wake it; unset by default",
  },
  FOREMAN_WAKE_METHOD: {
    field: "wakeMethod",
    schema: Joi.string().uppercase().valid("GET", "POST", "PUT").default("POST"),
    example: "GET",
    doc: "the HTTP method of the wake request (GET, POST or PUT; sent with no body)",
  },
  FOREMAN_WAKE_MAC: {
    field: "wakeMac",
    schema: Joi.string()
      .pattern(/^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$/, "MAC address such as 52:54:00:12:34:56")
      .custom((v: string) => (v.replace(/[:-]/g, "").toLowerCase().match(/../g) ?? []).join(":")),
    example: "52:54:00:12:34:56",
    doc: "while jobs wait on an unreachable target, the worker sends a Wake-on-LAN magic packet for this MAC; unset by default",
  },
  FOREMAN_WAKE_BROADCAST: {
    field: "wakeBroadcast",
    schema: Joi.string()
      .pattern(
        /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/,
        "IPv4 address[:port] or [IPv6 address][:port]",
      )
      .custom(parseUdpAddress)
      .default({ address: "255.255.255.255", port: 9 }),
    example: "192.168.1.255:9",
    doc: "where the Wake-on-LAN packet is sent (address[:port], port 9 by default)",
  },
  FOREMAN_WAKE_INTERVAL_MS: {
    field: "wakeIntervalMs",
    schema: durationMs(100).default(60_000),
    example: "60000",
    doc: "the wake action runs at most once per this interval while jobs wait on an unreachable target (ms)",
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
  FOREMAN_TARGET_MODEL_SLOTS: {
    field: "targetModelSlots",
    schema: Joi.number().integer().min(2).max(64).default(2),
    example: "2",
    doc: "how many models the target keeps loaded at once (set it to the target's OLLAMA_MAX_LOADED_MODELS): one slot stays for the embedder, the worker rotates its models through the others, unloading the least recently used one when it needs room",
  },
  FOREMAN_DRAIN_BY_RUNNER_OPTIONS: {
    field: "drainByRunnerOptions",
    schema: Joi.boolean().truthy("1", "yes", "on").falsy("0", "no", "off").default(true),
    example: "false",
    doc: "group queued jobs by model and runner options (num_ctx and the like, which make Ollama reload a model); false groups by model alone, for comparison or for a target that ignores runner options",
  },
  FOREMAN_MAX_ATTEMPTS: {
    field: "maxAttempts",
    schema: Joi.number().integer().min(1).max(100).default(3),
    example: "3",
    doc: "how many times a job may be started before an interruption fails it (a synchronous job whose caller already has part of its answer fails at once)",
  },
  FOREMAN_RELAY_POLL_MS: {
    field: "relayPollMs",
    schema: durationMs(10).default(250),
    example: "250",
    doc: "a gateway's fallback poll of a relay it follows; a file-system watch normally wakes it at once (ms)",
  },
  FOREMAN_SYNC_WAIT_MS: {
    field: "syncWaitMs",
    schema: durationMs(100).default(300_000),
    example: "300000",
    doc: "a synchronous chat or generate whose job has not started within this gets a 503/504 error and its job is canceled (ms)",
  },
  FOREMAN_SYNC_KEEPALIVE_MS: {
    field: "syncKeepaliveMs",
    schema: Joi.number().integer().min(0).max(3_600_000).default(0),
    example: "10000",
    doc: "0: headers wait for the job to start (errors keep their status); >0: headers with the job id at once, then an empty chunk this often while the job waits (ms)",
  },
  FOREMAN_TARGET_DOWN_PROBE_MAX_MS: {
    field: "targetDownProbeMaxMs",
    schema: durationMs(50).default(2000),
    example: "2000",
    doc: "while the target is down the worker probes it with backoff up to this interval, and claims nothing until it answers (ms)",
  },
  FOREMAN_TARGET_LINE_LIMIT: {
    field: "targetLineLimit",
    schema: Joi.string()
      .pattern(/^\d+(b|kb|mb|gb)$/i, "size such as 64mb")
      .custom(parseSize)
      .default(64 * 1024 ** 2),
    example: "64mb",
    doc: "longest line (or stream: false answer) the worker accepts from the target; longer fails the job",
  },
  FOREMAN_SHUTDOWN_GRACE_MS: {
    field: "shutdownGraceMs",
    schema: durationMs(0).default(10_000),
    example: "10000",
    doc: "on SIGTERM the worker lets its current job finish this long, then hands it back to the queue (ms)",
  },
  FOREMAN_WEBHOOK_TIMEOUT_MS: {
    field: "webhookTimeoutMs",
    schema: durationMs(100).default(WEBHOOK_DEFAULTS.timeoutMs),
    example: "10000",
    doc: "a webhook delivery that has not answered within this is a failed attempt (ms)",
  },
  FOREMAN_WEBHOOK_RETRY_BASE_MS: {
    field: "webhookRetryBaseMs",
    schema: durationMs(10).default(WEBHOOK_DEFAULTS.retryBaseMs),
    example: "1000",
    doc: "first webhook retry delay; doubles with each attempt, with jitter (ms)",
  },
  FOREMAN_WEBHOOK_RETRY_MAX_DELAY_MS: {
    field: "webhookRetryMaxDelayMs",
    schema: durationMs(10).default(WEBHOOK_DEFAULTS.retryMaxDelayMs),
    example: "300000",
    doc: "longest delay between two webhook attempts, a receiver's Retry-After included (ms)",
  },
  FOREMAN_WEBHOOK_RETRY_FOR_MS: {
    field: "webhookRetryForMs",
    schema: durationMs(0).default(WEBHOOK_DEFAULTS.retryForMs),
    example: "86400000",
    doc: "a webhook event still failing this long after it was recorded is given up (ms)",
  },
  FOREMAN_WEBHOOK_CONCURRENCY: {
    field: "webhookConcurrency",
    schema: Joi.number().integer().min(1).max(256).default(WEBHOOK_DEFAULTS.concurrency),
    example: "8",
    doc: "how many webhook deliveries run at once, over all receivers (each job's events stay in order)",
  },
  FOREMAN_WEBHOOK_ENDPOINT_CONCURRENCY: {
    field: "webhookEndpointConcurrency",
    schema: Joi.number().integer().min(1).max(256).default(WEBHOOK_DEFAULTS.endpointConcurrency),
    example: "2",
    doc: "how many webhook deliveries run at once to one receiver (scheme://host:port), so a slow one cannot hold up the rest",
  },
  FOREMAN_WEBHOOK_DISABLE_AFTER_MS: {
    field: "webhookDisableAfterMs",
    schema: Joi.number()
      .integer()
      .min(0)
      .max(90 * 86_400_000)
      .default(WEBHOOK_DEFAULTS.disableAfterMs),
    example: "432000000",
    doc: "a webhook endpoint whose every attempt failed for this long is disabled, like one that answers 410 (ms; default 5 days; 0 = only 410)",
  },
  FOREMAN_WEBHOOK_DISABLED_FOR_MS: {
    field: "webhookDisabledForMs",
    schema: Joi.number()
      .integer()
      .min(1000)
      .max(90 * 86_400_000)
      .default(WEBHOOK_DEFAULTS.disabledForMs),
    example: "86400000",
    doc: "a disabled webhook endpoint is tried again with one delivery after this long; a success enables it (ms)",
  },
  FOREMAN_WEBHOOK_ALLOWED_HOSTS: {
    field: "webhookAllowedHosts",
    schema: Joi.string()
      .custom((v: string) => parseWebhookAllowlist(v))
      .default([]),
    example: "127.0.0.1,::1,10.0.0.0/8,hooks.internal,*.example.com",
    doc: "webhooks go only to public addresses, except to these: a host name (*.domain for subdomains) may resolve to any address; an IP or CIDR range may be connected to whatever the name",
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
  FOREMAN_SYNC_RETENTION_MS: {
    field: "syncRetentionMs",
    schema: Joi.number().integer().min(1000).default(3_600_000),
    example: "3600000",
    doc: "finished synchronous jobs (their callers have the answer) and their relays are deleted this long after they ended (ms; default 1 hour)",
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
  FOREMAN_MAX_QUEUED_JOBS: {
    field: "maxQueuedJobs",
    schema: Joi.number().integer().min(1).max(100_000_000).default(100_000),
    example: "100000",
    doc: "new jobs are refused with 503 and Retry-After while this many are queued",
  },
  FOREMAN_MAX_QUEUED_BYTES: {
    field: "maxQueuedBytes",
    schema: Joi.string()
      .pattern(/^\d+(b|kb|mb|gb)$/i, "size such as 1gb")
      .custom(parseSize)
      .default(1024 ** 3),
    example: "1gb",
    doc: "new jobs are refused with 503 and Retry-After while the queued jobs' requests total this much",
  },
  FOREMAN_MAX_CONNECTIONS: {
    field: "maxConnections",
    schema: Joi.number().integer().min(1).max(1_000_000).default(1024),
    example: "1024",
    doc: "open connections the gateway accepts; further ones are closed at once",
  },
  FOREMAN_HEADERS_TIMEOUT_MS: {
    field: "headersTimeoutMs",
    schema: durationMs(100).default(10_000),
    example: "10000",
    doc: "a caller must send its request headers within this, or gets 408 and is disconnected (ms)",
  },
  FOREMAN_REQUEST_TIMEOUT_MS: {
    field: "requestTimeoutMs",
    schema: durationMs(100).default(120_000),
    example: "120000",
    doc: "a caller must send its whole request within this (raise it for large /api/blobs uploads); answers are not bounded (ms)",
  },
  FOREMAN_KEEP_ALIVE_TIMEOUT_MS: {
    field: "keepAliveTimeoutMs",
    schema: durationMs(100).default(65_000),
    example: "65000",
    doc: "an idle keep-alive connection is closed after this; keep it above a load balancer's idle timeout (ms)",
  },
  FOREMAN_MAX_LONG_POLLS: {
    field: "maxLongPolls",
    schema: Joi.number().integer().min(1).max(1_000_000).default(256),
    example: "256",
    doc: "concurrent GET /jobs/<id>?wait= requests per gateway; further ones get 503 and Retry-After",
  },
  FOREMAN_MAX_STREAM_FOLLOWERS: {
    field: "maxStreamFollowers",
    schema: Joi.number().integer().min(1).max(1_000_000).default(256),
    example: "256",
    doc: "concurrent GET /jobs/<id>/stream requests per gateway; further ones get 503 and Retry-After",
  },
  FOREMAN_DB_CHECK_MS: {
    field: "dbCheckMs",
    schema: durationMs(50).default(2000),
    example: "2000",
    doc: "how often each process checks that its database file is still the one it opened; if not, it stops (ms)",
  },
};

/** "192.168.1.255:9" or "[ff02::1]:9" → address and port (the FOREMAN_WAKE_BROADCAST format). */
function parseUdpAddress(value: string, helpers: Joi.CustomHelpers) {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(value);
  const address = m?.[1] ?? "";
  const port = m?.[2] === undefined ? 9 : Number(m[2]);
  if (net.isIP(address) === 0 || port < 1 || port > 65_535) return helpers.error("any.invalid");
  return { address, port };
}

/** "10mb" → bytes (the size format, already checked by the key's pattern). */
function parseSize(value: string): number {
  const m = /^(\d+)(b|kb|mb|gb)$/i.exec(value)!;
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[m[2]!.toLowerCase() as "b"];
  return Number(m[1]) * unit;
}

export const SECRET_KEYS: readonly string[] = Object.entries(CONFIG_KEYS)
  .filter(([, spec]) => spec.secret)
  .map(([key]) => key);

function describeProblem(err: Joi.ValidationError, raw: string | undefined, spec: KeySpec): string {
  const detail = err.details[0];
  if (!detail) return "is invalid";
  // A custom check's own sentence reads better without joi's "failed custom validation because".
  const customError = detail.type === "any.custom" ? (detail.context?.error as Error | undefined) : undefined;
  // joi's messages start with the quoted label ("\"value\" must be ..."); keep only the predicate.
  const problem = customError?.message ?? detail.message.replace(/^"[^"]*"\s*/, "");
  // Some joi messages quote the value itself ("with value ... fails to match"); a secret must not be echoed.
  if (!raw) return problem;
  if (spec.secret) return problem.split(raw).join("[redacted]");
  return spec.shown ? problem.split(raw).join(spec.shown(raw)) : problem;
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
      const shown = spec.secret ? "" : ` (got ${JSON.stringify(spec.shown && raw ? spec.shown(raw) : raw)})`;
      throw new ConfigError(`${key} ${describeProblem(error, raw, spec)}${shown}; example: ${key}=${spec.example}`);
    }
    out[spec.field] = value;
  }
  const dataDir = path.resolve(String(out.dataDir));
  out.dataDir = dataDir;
  out.dbPath = out.dbPath ? path.resolve(String(out.dbPath)) : path.join(dataDir, "foreman.db");
  out.ollamaUrl = String(out.ollamaUrl).replace(/\/+$/, "");
  const target = new URL(String(out.ollamaUrl));
  if (target.username || target.password) {
    // Neither the worker's client nor the proxy would send them, and a URL is printed in start-up lines
    // and poller errors: refuse it rather than leak a password that does not even work.
    throw new ConfigError(
      `FOREMAN_OLLAMA_URL must not contain a user name or password (got ${JSON.stringify(withoutUserInfo(String(out.ollamaUrl)))}); put the target's bearer token in FOREMAN_OLLAMA_TOKEN instead; example: FOREMAN_OLLAMA_URL=http://127.0.0.1:11434`,
    );
  }
  if ((out.headersTimeoutMs as number) > (out.requestTimeoutMs as number)) {
    throw new ConfigError(
      `FOREMAN_HEADERS_TIMEOUT_MS must not be more than FOREMAN_REQUEST_TIMEOUT_MS (got ${out.headersTimeoutMs} and ${out.requestTimeoutMs}); example: FOREMAN_HEADERS_TIMEOUT_MS=${Math.min(10_000, out.requestTimeoutMs as number)}`,
    );
  }
  if ((out.workerStaleMs as number) <= (out.heartbeatMs as number) * 2) {
    throw new ConfigError(
      `FOREMAN_WORKER_STALE_MS must be more than twice FOREMAN_HEARTBEAT_MS (got ${out.workerStaleMs} and ${out.heartbeatMs}); example: FOREMAN_WORKER_STALE_MS=${(out.heartbeatMs as number) * 10}`,
    );
  }
  return Object.freeze({ ...(out as unknown as ForemanConfig), ...overrides });
}

/** `http://user:pass@host/` → `http://[redacted]@host/`, so an error line can show the rest of the URL. */
function withoutUserInfo(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, "$1[redacted]@");
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
