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

const prettyLine = winston.format.printf((info) => {
  const { timestamp, level, message, service, ...rest } = info;
  const fields = Object.entries(rest)
    .filter(([k]) => typeof k === "string")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${timestamp} ${level.padEnd(5)} [${service}] ${message}${fields ? ` ${fields}` : ""}`;
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
