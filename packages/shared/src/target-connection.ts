import type http from "node:http";

/**
 * How foreman's two HTTP clients of the Ollama target (the gateway's proxy and the worker's target client)
 * send a request over their keep-alive pools:
 *
 * - A new connection that does not complete within the connect timeout fails with ETIMEDOUT: a sleeping
 *   host drops SYNs, and without a bound the request would hang for the OS's minutes-long default.
 * - A request that went out on a pooled socket the target had closed while idle (it restarted, or slept)
 *   fails with ECONNRESET or EPIPE before any answer: it never reached the target, so it is sent once more,
 *   when its caller says it may be (its body can be replayed and someone still waits for the answer).
 */
export interface TargetRequestOptions {
  /**
   * Makes and sends one attempt's request (ending it, or piping the body into it). Called a second time
   * for the one retry.
   */
  send(): http.ClientRequest;
  /** Bound on connecting a new socket (ms); a reused keep-alive socket is already connected. */
  connectTimeoutMs: number;
  /** Whether the request may be sent again now. */
  mayRetry(): boolean;
  onResponse(res: http.IncomingMessage, req: http.ClientRequest): void;
  /**
   * The request failed (after its retry, if it had one). `staleSocket` says it failed on a pooled socket
   * the target had closed, before any answer.
   */
  onError(err: NodeJS.ErrnoException, staleSocket: boolean): void;
}

export function requestTarget(options: TargetRequestOptions): void {
  const attempt = (retried: boolean) => {
    const req = options.send();
    let answered = false;
    const disarm = armConnectTimeout(req, options.connectTimeoutMs);
    req.on("response", (res) => {
      answered = true;
      disarm();
      options.onResponse(res, req);
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      disarm();
      const stale = !answered && isStaleSocketError(req, err);
      if (stale && !retried && options.mayRetry()) attempt(true);
      else options.onError(err, stale);
    });
  };
  attempt(false);
}

/** Destroys `req` with an ETIMEDOUT error when its new socket has not connected within `ms`. */
function armConnectTimeout(req: http.ClientRequest, ms: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  req.on("socket", (socket) => {
    if (!socket.connecting) return;
    timer = setTimeout(
      () => req.destroy(Object.assign(new Error(`connect timed out after ${ms} ms`), { code: "ETIMEDOUT" })),
      ms,
    );
    socket.once("connect", () => clearTimeout(timer));
  });
  return () => clearTimeout(timer);
}

/** Only a reset on a pooled socket means "closed while idle, never arrived"; a timeout does not. */
function isStaleSocketError(req: http.ClientRequest, err: NodeJS.ErrnoException): boolean {
  return req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE");
}
