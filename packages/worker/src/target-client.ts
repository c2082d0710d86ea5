import http from "node:http";
import https from "node:https";
import { type ProcessResponse, requestTarget, type VersionResponse } from "@foreman/shared";
import fetch, { type RequestInit, type Response } from "node-fetch";

export interface TargetClientOptions {
  baseUrl: string;
  token: string | undefined;
  /** Per-request bound for the poller's small requests (ms). */
  timeoutMs: number;
  /** A generation whose connection carries nothing for this long is abandoned (ms). */
  idleTimeoutMs?: number;
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

/** The target could not be reached before it answered: nothing was generated. */
export class ConnectError extends Error {
  constructor(
    message: string,
    /**
     * The request went out on a pooled connection the target had closed, and so did its retry (openStream
     * sends such a request once more by itself).
     */
    readonly reusedSocket: boolean,
  ) {
    super(message);
    this.name = "ConnectError";
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

  const target = new URL(base);
  const request = target.protocol === "https:" ? https.request : http.request;

  /**
   * Starts a generation request and resolves with the target's response as soon as its headers arrive, so
   * the caller can relay the body chunk by chunk. A request that went out on a pooled socket the target had
   * closed while idle is sent once more by itself. Rejects with a ConnectError when the target could not be
   * reached at all (nothing was generated, so the job may be retried without spending an attempt).
   */
  function openStream(path: string, body: string, signal: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      requestTarget({
        connectTimeoutMs: options.timeoutMs,
        send() {
          const req = request({
            protocol: target.protocol,
            hostname: target.hostname,
            port: target.port || (target.protocol === "https:" ? 443 : 80),
            path: target.pathname.replace(/\/+$/, "") + path,
            method: "POST",
            agent,
            headers: { ...headers, "content-length": Buffer.byteLength(body) },
            signal,
          });
          // A hung target, or a connection half-open after its host went away, would hold the only worker
          // forever: no byte for this long ends the request, before or after the answer began.
          const idleMs = options.idleTimeoutMs ?? 300_000;
          req.setTimeout(idleMs, () => req.destroy(new Error(`no data from the target for ${idleMs} ms`)));
          req.end(body);
          return req;
        },
        mayRetry: () => !signal.aborted,
        onResponse: resolve,
        onError(err, staleSocket) {
          reject(
            signal.aborted
              ? err
              : new ConnectError(err.code ? `${err.code}: ${err.message}` : err.message, staleSocket),
          );
        },
      });
    });
  }

  return {
    baseUrl: base,
    call,
    openStream,
    /** Whether the target knows a model (false only on its 404; any other failure says "maybe"). */
    async hasModel(model: string): Promise<boolean> {
      try {
        await json("/api/show", { method: "POST", body: JSON.stringify({ model }) });
        return true;
      } catch (err) {
        return !(err instanceof TargetResponseError && err.status === 404);
      }
    },
    /** Unloads a model now (`keep_alive: 0` with no prompt, as `ollama stop` does). */
    async unload(model: string): Promise<void> {
      await json("/api/generate", { method: "POST", body: JSON.stringify({ model, keep_alive: 0 }) });
    },
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
