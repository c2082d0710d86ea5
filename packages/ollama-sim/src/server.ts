import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { realClock } from "./clock.js";
import {
  DEFAULT_KEEP_ALIVE,
  DEFAULT_LOAD_MS,
  DEFAULT_MAX_LOADED_MODELS,
  DEFAULT_MODELS,
  DEFAULT_TOKENS,
  DEFAULT_TOKENS_PER_SECOND,
  DEFAULT_VERSION,
} from "./default-models.js";
import { FaultPlan, parseFaultRequest } from "./faults.js";
import { formatGoTime } from "./go-time.js";
import { sendError } from "./http-io.js";
import type {
  FaultRequest,
  FaultScope,
  FaultSnapshot,
  LoadedModel,
  SimEvent,
  SimFaults,
  SimModel,
  SimStats,
  Simulator,
  SimulatorOptions,
} from "./interfaces.js";
import { parseKeepAlive } from "./keep-alive.js";
import { ModelCatalog } from "./model-catalog.js";
import { Residency } from "./residency.js";
import type { RequestScope, RouteContext, RouteHandler } from "./route-context.js";
import type { Router } from "./router.js";
import { controlRoutes, ollamaRoutes } from "./routes/table.js";
import { type CallRecord, StatsRecorder } from "./stats.js";

/** gin's bodies for unrouted requests (plain text, not JSON). */
const NOT_FOUND_BODY = "404 page not found";
const METHOD_NOT_ALLOWED_BODY = "405 method not allowed";

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off("listening", onListening);
      reject(error);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

function stopListening(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

/** A request served outside the statistics (the control routes). */
function untrackedCall(req: IncomingMessage, path: string): CallRecord {
  return {
    entry: {
      id: 0,
      at: "",
      method: req.method ?? "GET",
      path,
      route: path,
      headers: {},
      finished: false,
      aborted: false,
    },
    startedAt: 0,
    closed: false,
    killedByServer: false,
    onClose: new Set(),
  };
}

class SimulatorServer implements Simulator {
  readonly url: string;
  readonly port: number;
  readonly faults: SimFaults;

  private readonly sockets = new Set<Socket>();
  private readonly activeCalls = new Set<CallRecord>();
  private readonly hung = new Set<ServerResponse>();
  private readonly listeners = new Set<(event: SimEvent) => void>();
  private readonly ollama: Router = ollamaRoutes();
  private readonly control: Router = controlRoutes();
  private refusing:
    | { until: number; timer: NodeJS.Timeout; reopened: Promise<void>; markReopened: () => void }
    | undefined;
  private closing = false;

  constructor(
    private readonly server: Server,
    private readonly host: string,
    port: number,
    private readonly ctx: RouteContext,
    private readonly token: string | undefined,
  ) {
    this.port = port;
    this.url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    const plan = ctx.faults;
    this.faults = {
      refuseConnections: (ms) => this.refuse(ms),
      hang: (scope?: FaultScope) => plan.setHang(scope ?? {}),
      dieMidStream: (options) => plan.setDieMidStream(options),
      slowFirstToken: (options) => plan.setSlowFirstToken(options),
      clear: () => this.applyFaults({ clear: true }),
      apply: (request) => this.applyFaults(parseFaultRequest(request)),
      snapshot: () => this.faultSnapshot(),
    };
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    server.on("request", (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
  }

  stats(): SimStats {
    return this.ctx.stats.snapshot();
  }

  resetStats(): void {
    this.ctx.stats.reset();
  }

  setModels(models: SimModel[]): void {
    this.ctx.catalog.replaceAll(models);
  }

  loaded(): LoadedModel[] {
    return this.ctx.residency.snapshot();
  }

  on(listener: (event: SimEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: SimEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A test's listener must not break the server.
      }
    }
  }

  whenListening(): Promise<void> {
    return this.refusing ? this.refusing.reopened : Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.refusing) {
      clearTimeout(this.refusing.timer);
      this.refusing.markReopened();
      this.refusing = undefined;
    }
    this.ctx.faults.clear();
    const stopped = stopListening(this.server);
    this.dropConnections();
    this.ctx.residency.close();
    await stopped;
    this.listeners.clear();
  }

  async applyFaults(request: FaultRequest): Promise<void> {
    const plan = this.ctx.faults;
    if (request.clear) {
      plan.clear();
      if (this.refusing) await this.reopen();
    }
    if (request.hang) plan.setHang(request.hang);
    if (request.dieMidStream) plan.setDieMidStream(request.dieMidStream);
    if (request.slowFirstToken) plan.setSlowFirstToken(request.slowFirstToken);
    if (request.refuse) await this.refuse(request.refuse.ms);
  }

  faultSnapshot(): FaultSnapshot {
    return {
      refusingUntil: this.refusing ? formatGoTime(this.refusing.until, true) : null,
      ...this.ctx.faults.snapshot(),
      hungRequests: this.hung.size,
    };
  }

  /**
   * A sleeping host: stop listening (new connections get ECONNREFUSED), drop every open
   * connection, keep-alive ones included, then listen again on the same port after `ms`.
   */
  private async refuse(ms: number): Promise<void> {
    if (this.closing) return;
    if (this.refusing) {
      clearTimeout(this.refusing.timer);
      this.refusing.until = Date.now() + ms;
      this.refusing.timer = setTimeout(() => void this.reopen(), ms);
      return;
    }
    let markReopened = () => {};
    const reopened = new Promise<void>((resolve) => {
      markReopened = resolve;
    });
    this.refusing = { until: Date.now() + ms, timer: setTimeout(() => void this.reopen(), ms), reopened, markReopened };
    this.ctx.stats.recordFault("refusals");
    const stopped = stopListening(this.server);
    this.dropConnections();
    await stopped;
    this.emit({ type: "refusing", ms });
  }

  private async reopen(): Promise<void> {
    const refusing = this.refusing;
    if (!refusing || this.closing) return;
    clearTimeout(refusing.timer);
    for (let attempt = 0; ; attempt++) {
      try {
        await listen(this.server, this.port, this.host);
        break;
      } catch (error) {
        // The port may still be in TIME_WAIT or briefly taken; a few retries cover that.
        if (attempt >= 20 || this.closing) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    this.refusing = undefined;
    refusing.markReopened();
    this.emit({ type: "listening" });
  }

  private dropConnections(): void {
    for (const call of this.activeCalls) call.killedByServer = true;
    this.ctx.stats.recordFault("connectionsDestroyed", this.closing ? 0 : this.sockets.size);
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.hung.clear();
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt >= 0 ? url.slice(0, queryAt) : url;

    if (path.startsWith("/_sim/")) return this.handleControl(req, res, method, path);

    const match = this.ollama.match(method, path);
    const call = this.ctx.stats.begin(req, path, match.kind === "found" ? `${method} ${match.pattern}` : "unmatched");
    this.activeCalls.add(call);
    const abort = new AbortController();
    res.on("close", () => {
      this.activeCalls.delete(call);
      this.hung.delete(res);
      const completed = res.writableFinished;
      if (!completed) {
        call.closed = true;
        for (const onClose of call.onClose) onClose();
        call.onClose.clear();
        abort.abort();
      }
      const status = res.headersSent ? res.statusCode : 0;
      const aborted = !completed && !call.killedByServer;
      this.ctx.stats.finish(call, status, completed);
      // Emit after the handler has unwound (it stops on the close hooks above, within
      // microtasks), so a listener sees the model already released.
      if (this.listeners.size > 0) {
        setImmediate(() => {
          if (aborted) this.emit({ type: "abort", path });
          this.emit({ type: "request-end", path, status, aborted });
        });
      }
    });

    if (this.ctx.faults.takeHang(path)) {
      call.entry.fault = "hang";
      this.ctx.stats.recordFault("hung");
      this.hung.add(res);
      req.resume(); // read the body so the client is left waiting for the answer only
      this.emit({ type: "hang", path });
      return;
    }

    if (this.token !== undefined && (path.startsWith("/api/") || path.startsWith("/v1/"))) {
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        req.resume();
        return sendError(res, 401, "unauthorized");
      }
    }

    if (match.kind === "not-found") {
      req.resume();
      return sendPlainText(res, NOT_FOUND_BODY, 404);
    }
    if (match.kind === "method-not-allowed") {
      req.resume();
      return sendPlainText(res, METHOD_NOT_ALLOWED_BODY, 405);
    }
    const scope: RequestScope = { req, res, call, path, signal: abort.signal, params: match.params };
    this.run(match.handler, scope);
  }

  private handleControl(req: IncomingMessage, res: ServerResponse, method: string, path: string) {
    const match = this.control.match(method, path);
    if (match.kind !== "found") {
      req.resume();
      return sendPlainText(
        res,
        match.kind === "not-found" ? NOT_FOUND_BODY : METHOD_NOT_ALLOWED_BODY,
        match.kind === "not-found" ? 404 : 405,
      );
    }
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    this.run(match.handler, {
      req,
      res,
      call: untrackedCall(req, path),
      path,
      signal: abort.signal,
      params: match.params,
    });
  }

  private run(handler: RouteHandler, scope: RequestScope): void {
    Promise.resolve()
      .then(() => handler(scope, this.ctx))
      .catch((error: unknown) => {
        if (!scope.res.headersSent) sendError(scope.res, 500, error instanceof Error ? error.message : String(error));
        else scope.res.destroy();
      });
  }
}

/** gin writes its 404 and 405 bodies as bare text/plain. */
function sendPlainText(res: ServerResponse, body: string, status: number): void {
  if (res.headersSent) return;
  res.writeHead(status, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

/** Starts an Ollama simulator; resolves once it accepts connections. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const clock = options.clock ?? realClock;
  const host = options.host ?? "127.0.0.1";
  const defaultKeepAliveMs = parseKeepAlive(options.defaultKeepAlive ?? DEFAULT_KEEP_ALIVE) ?? 300_000;
  const stats = new StatsRecorder(clock, options.logSize ?? 200);
  const catalog = new ModelCatalog(
    options.models ?? DEFAULT_MODELS,
    {
      loadMs: options.loadMs ?? DEFAULT_LOAD_MS,
      tokensPerSecond: options.tokensPerSecond ?? DEFAULT_TOKENS_PER_SECOND,
    },
    clock,
  );
  let simulator: SimulatorServer | undefined;
  const emit = (event: SimEvent) => simulator?.emit(event);
  const residency = new Residency({
    maxLoaded: options.maxLoadedModels ?? DEFAULT_MAX_LOADED_MODELS,
    defaultKeepAliveMs,
    clock,
    observer: {
      loadStarted: (model) => {
        stats.recordLoad(model.name);
        emit({ type: "load", model: model.name });
      },
      loadFinished: (model) => emit({ type: "ready", model: model.name }),
      unloaded: (model, reason) => {
        stats.recordUnload(model.name, reason === "evicted");
        emit({ type: "unload", model: model.name, reason });
      },
    },
  });
  const ctx: RouteContext = {
    catalog,
    residency,
    stats,
    faults: new FaultPlan(),
    config: {
      version: options.version ?? DEFAULT_VERSION,
      defaultKeepAliveMs,
      defaultTokens: options.defaultTokens ?? DEFAULT_TOKENS,
      pullMs: options.pullMs ?? 0,
      registry: options.registry,
    },
    clock,
    control: {
      applyFaults: (request) => (simulator ? simulator.applyFaults(request) : Promise.resolve()),
      faultSnapshot: () => simulator?.faultSnapshot(),
      setModels: (models) => catalog.replaceAll(models),
    },
  };

  const server = createServer();
  // Go's http.Server keeps idle keep-alive connections open indefinitely; so does the simulator
  // (close() and the refuse fault destroy them explicitly).
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  await listen(server, options.port ?? 0, host);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : (options.port ?? 0);
  simulator = new SimulatorServer(server, host, port, ctx, options.token);
  return simulator;
}
