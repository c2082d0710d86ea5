import http from "node:http";
import https from "node:https";
import type { ProcessResponse, VersionResponse } from "@foreman/shared";
import fetch, { type RequestInit, type Response } from "node-fetch";

export interface TargetClientOptions {
  baseUrl: string;
  token: string | undefined;
  /** Per-request bound for the poller's small requests (ms). */
  timeoutMs: number;
}

/** A failed HTTP exchange with the target, keeping Ollama's status and error text unchanged. */
export class TargetResponseError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "TargetResponseError";
  }
}

/**
 * The worker's HTTP client for the Ollama target: a keep-alive pool, the operator's bearer token on every
 * request, and a timeout so a sleeping host turns into an error instead of a hang.
 */
export function createTargetClient(options: TargetClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, "");
  const agent = base.startsWith("https:") ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;

  async function call(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(`${base}${path}`, {
      agent,
      ...init,
      headers: { ...headers, ...(init.headers as Record<string, string> | undefined) },
      signal: init.signal ?? AbortSignal.timeout(options.timeoutMs),
    });
    if (!res.ok) {
      const text = await res.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // Not JSON: keep the raw text.
      }
      throw new TargetResponseError(res.status, message);
    }
    return res;
  }

  async function json<T>(path: string, init?: RequestInit): Promise<T> {
    return (await (await call(path, init)).json()) as T;
  }

  return {
    baseUrl: base,
    call,
    version: () => json<VersionResponse>("/api/version"),
    ps: () => json<ProcessResponse>("/api/ps"),
    /**
     * Loads an embedding model and keeps it resident: an embed request with no input loads the model
     * with the given keep_alive and returns no vectors (server/routes.go EmbedHandler).
     */
    async loadEmbedder(model: string, keepAlive: number | string): Promise<void> {
      await json("/api/embed", { method: "POST", body: JSON.stringify({ model, input: [], keep_alive: keepAlive }) });
    },
    close(): void {
      agent.destroy();
    },
  };
}

export type TargetClient = ReturnType<typeof createTargetClient>;
