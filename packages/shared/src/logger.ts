import winston from "winston";
import type { ForemanConfig } from "./config.js";
import { configSecrets } from "./config.js";

export type Logger = winston.Logger;

export interface LoggerOptions {
  service: "gateway" | "worker" | "supervisor" | string;
  level?: string;
  format?: "json" | "pretty";
  /** Values that must never appear in a log line (tokens, webhook secrets). */
  secrets?: readonly string[];
  /** Where lines go; stdout by default. Tests pass a stream to capture them. */
  stream?: NodeJS.WritableStream;
}

/**
 * Replaces any known secret value found in the message or a string field. Secrets are kept out of log
 * calls by construction; this is the last line of defence against one slipping into an error message.
 */
const redactSecrets = winston.format((info, opts) => {
  const secrets = (opts as { secrets: readonly string[] }).secrets;
  if (secrets.length === 0) return info;
  const scrub = (s: string) => secrets.reduce((acc, secret) => acc.split(secret).join("[redacted]"), s);
  for (const key of Object.keys(info)) {
    const value = info[key];
    if (typeof value === "string") info[key] = scrub(value);
  }
  return info;
});

// C0 and C1 controls (newlines, carriage returns, terminal escapes) and the Unicode line separators.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const NAMED_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * A readable line can carry text from callers (a model name, a target's error): written raw, a newline in
 * it would start a forged log line and an escape sequence would drive the terminal. Each control
 * character is shown as its escape instead, so one record is always exactly one line.
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(
    CONTROL_CHARACTERS,
    (c) => NAMED_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const prettyLine = winston.format.printf((info) => {
  const { timestamp, level, message, service, ...rest } = info;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === "string")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return escapeControlCharacters(
    `${timestamp} ${level.padEnd(5)} [${service}] ${message}${fields ? ` ${fields}` : ""}`,
  );
});

export function createLogger(options: LoggerOptions): Logger {
  const secrets = options.secrets ?? [];
  const base = [winston.format.timestamp(), redactSecrets({ secrets })];
  const format =
    options.format === "pretty"
      ? winston.format.combine(...base, prettyLine)
      : winston.format.combine(...base, winston.format.json());
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: options.level ?? "info",
    format,
    defaultMeta: { service: options.service },
    transports: [transport],
  });
}

export function createLoggerFromConfig(config: ForemanConfig, service: string): Logger {
  return createLogger({
    service,
    level: config.logLevel,
    format: config.logFormat,
    secrets: configSecrets(config),
  });
}
