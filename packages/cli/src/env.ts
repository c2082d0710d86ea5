import path from "node:path";
import { UsageError } from "./exit-codes.js";

export const DEFAULT_FOREMAN_URL = "http://127.0.0.1:11435";
export const DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434";

type Env = Readonly<Record<string, string | undefined>>;

/** How to reach the gateway: FOREMAN_URL and FOREMAN_API_TOKEN. */
export interface ForemanEnv {
  baseUrl: string;
  token: string | undefined;
}

/** How to reach the target directly (`models`): the worker's own FOREMAN_OLLAMA_* keys. */
export interface TargetEnv {
  baseUrl: string;
  token: string | undefined;
  /** FOREMAN_EMBED_MODEL: the always-resident embedder. */
  embedModel: string | undefined;
}

export function readForemanEnv(env: Env): ForemanEnv {
  return {
    baseUrl: readUrl(env, "FOREMAN_URL", DEFAULT_FOREMAN_URL, "FOREMAN_API_TOKEN"),
    token: readToken(env, "FOREMAN_API_TOKEN"),
  };
}

export function readTargetEnv(env: Env): TargetEnv {
  return {
    baseUrl: readUrl(env, "FOREMAN_OLLAMA_URL", DEFAULT_OLLAMA_URL, "FOREMAN_OLLAMA_TOKEN"),
    token: readToken(env, "FOREMAN_OLLAMA_TOKEN"),
    embedModel: nonEmpty(env.FOREMAN_EMBED_MODEL),
  };
}

/** The database file, resolved as the gateway and worker resolve it: FOREMAN_DB_PATH, else FOREMAN_DATA_DIR/foreman.db. */
export function readDbPath(env: Env, cwd: string): string {
  const dbPath = nonEmpty(env.FOREMAN_DB_PATH);
  if (dbPath) return path.resolve(cwd, dbPath);
  return path.join(path.resolve(cwd, nonEmpty(env.FOREMAN_DATA_DIR) ?? "./data"), "foreman.db");
}

/** The secret values in the environment, so error text can be scrubbed of them as a last line of defence. */
export function secretValues(env: Env): string[] {
  return ["FOREMAN_API_TOKEN", "FOREMAN_OLLAMA_TOKEN"]
    .map((key) => nonEmpty(env[key]))
    .filter((value): value is string => value !== undefined);
}

function readUrl(env: Env, key: string, fallback: string, tokenKey: string): string {
  const text = nonEmpty(env[key]) ?? fallback;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${key} must be an absolute http(s) URL such as ${fallback}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${key} must be an http or https URL such as ${fallback}`);
  }
  // The URL would be printed in messages, and neither foreman nor its worker send URL credentials.
  if (url.username || url.password) {
    throw new UsageError(`${key} must not contain credentials: put the token in ${tokenKey}`);
  }
  if (url.search || url.hash) throw new UsageError(`${key} must not have a query or a fragment`);
  return url.href.replace(/\/+$/, "");
}

function readToken(env: Env, key: string): string | undefined {
  const token = nonEmpty(env[key]);
  // fetch would reject such a header with an error that quotes the value.
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new UsageError(`${key} must be printable ASCII without spaces (the value is not shown)`);
  }
  return token;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}
