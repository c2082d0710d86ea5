import type { SimClock } from "./clock.js";

/** A model the simulator serves. Only `name` is required; the rest have realistic defaults. */
export interface SimModel {
  /** "llama3.2:latest"; a missing tag means ":latest", as in Ollama. */
  name: string;
  /** How long a load takes, in ms (default: SimulatorOptions.loadMs, else 250). */
  loadMs?: number;
  /** Generation speed (default: SimulatorOptions.tokensPerSecond, else 100). */
  tokensPerSecond?: number;
  /** Prompt evaluation speed (default: 10 x tokensPerSecond). */
  promptTokensPerSecond?: number;
  /** Set => an embedding model with vectors of this length (and no generate/chat). */
  embeddingSize?: number;
  /** Architecture family shown in details ("llama", "qwen3", "nomic-bert"). */
  family?: string;
  /** "3.2B", "137M". */
  parameterSize?: string;
  /** "Q4_K_M", "F16". */
  quantization?: string;
  /** Size on disk and in VRAM, bytes. */
  sizeBytes?: number;
  /**
   * Ollama capabilities: "completion", "tools", "thinking", "vision", "insert", "embedding".
   * Default: ["embedding"] for an embedding model, ["completion"] otherwise.
   */
  capabilities?: string[];
  /** Context window reported by /api/ps and /api/show (default 4096; 2048 for embedders). */
  contextLength?: number;
}

export interface SimulatorOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port; 0 picks a free one (default 0). */
  port?: number;
  /** The model library (default: DEFAULT_MODELS, three chat models and nomic-embed-text). */
  models?: SimModel[];
  /** OLLAMA_MAX_LOADED_MODELS (default 2; 0 means no limit). */
  maxLoadedModels?: number;
  /** OLLAMA_KEEP_ALIVE: the keep-alive of a load whose request names none (default "5m"). */
  defaultKeepAlive?: string | number;
  /** When set, every /api and /v1 route requires `Authorization: Bearer <token>`. */
  token?: string;
  /** What GET /api/version answers (default "0.32.14"). */
  version?: string;
  /** Load time for models that set none (default 250 ms). */
  loadMs?: number;
  /** Token rate for models that set none (default 100/s). */
  tokensPerSecond?: number;
  /** Tokens generated when the request sets no options.num_predict (default 24). */
  defaultTokens?: number;
  /** How long a pull or push takes from first to last progress line (default 0). */
  pullMs?: number;
  /**
   * Models /api/pull can fetch. Absent: any valid name pulls and joins the library as a chat model
   * (or an embedder when its name contains "embed"). Present: other names fail as Ollama does
   * when the registry has no such manifest.
   */
  registry?: SimModel[];
  /** How many entries the request log and the Authorization log keep (default 200). */
  logSize?: number;
  /** Time source for keep-alive expiry and printed timestamps (default: the real clock). */
  clock?: SimClock;
}

/** A model in memory right now, as the scheduler sees it. */
export interface LoadedModel {
  name: string;
  state: "loading" | "ready";
  /** Requests holding the model (Ollama's refCount). */
  activeRequests: number;
  /** Current keep-alive in ms; null means "forever" (pinned). */
  keepAliveMs: number | null;
  /** RFC 3339, as /api/ps shows it. */
  expiresAt: string;
  loadedAt: string;
  sizeVram: number;
}

export interface RequestLogEntry {
  id: number;
  /** RFC 3339 UTC arrival time. */
  at: string;
  method: string;
  path: string;
  /** The route it matched ("POST /api/chat"), or "unmatched". */
  route: string;
  model?: string;
  /** keep_alive exactly as the request sent it. */
  keepAlive?: unknown;
  stream?: boolean;
  /** authorization, user-agent, content-type, accept and every x-* header. */
  headers: Record<string, string>;
  status?: number;
  finished: boolean;
  /** The client went away before the response was complete. */
  aborted: boolean;
  /** A fault the simulator injected into this request: "hang", "die", "slow-first-token", "refuse". */
  fault?: string;
  durationMs?: number;
}

export interface CountByName {
  total: number;
  byModel: Record<string, number>;
}

export interface SimStats {
  startedAt: string;
  requests: { total: number; byRoute: Record<string, number> };
  inFlight: number;
  aborted: { total: number; byPath: Record<string, number> };
  loads: CountByName;
  unloads: CountByName;
  /** Unloads forced to make room for another model (a subset of unloads). */
  evictions: CountByName;
  faults: {
    hung: number;
    diedMidStream: number;
    slowedFirstToken: number;
    refusals: number;
    connectionsDestroyed: number;
  };
  /** The Authorization header (or null) of the most recent requests, oldest first. */
  lastAuthorizations: Array<string | null>;
  /** The most recent requests, oldest first. */
  recentRequests: RequestLogEntry[];
}

/** Which requests a fault applies to. With neither count nor forMs it lasts until cleared. */
export interface FaultScope {
  /** Only the next N matching requests. */
  count?: number;
  /** Only requests arriving within this many ms from now. */
  forMs?: number;
  /** Only paths starting with this ("/api/chat"). */
  pathPrefix?: string;
}

/** The body of POST /_sim/faults; several keys may be combined. */
export interface FaultRequest {
  /** Stop listening for `ms` (ECONNREFUSED), dropping every open connection, then listen again. */
  refuse?: { ms: number };
  /** Accept matching requests and never answer them. */
  hang?: FaultScope;
  /** Destroy the socket after `afterChunks` chunks of matching streamed responses. */
  dieMidStream?: FaultScope & { afterChunks: number };
  /** Hold the first token of matching generations back by `ms`. */
  slowFirstToken?: FaultScope & { ms: number };
  /** Remove every fault (and listen again if refusing) before applying the other keys. */
  clear?: boolean;
}

export interface FaultSnapshot {
  refusingUntil: string | null;
  hang: (FaultScope & { expiresAt?: string }) | null;
  dieMidStream: (FaultScope & { afterChunks: number; expiresAt?: string }) | null;
  slowFirstToken: (FaultScope & { ms: number; expiresAt?: string }) | null;
  /** Requests currently held open by the hang fault. */
  hungRequests: number;
}

export interface SimFaults {
  /** Resolves once the port is closed; it reopens after `ms` (see Simulator.whenListening). */
  refuseConnections(ms: number): Promise<void>;
  hang(scope?: FaultScope): void;
  dieMidStream(options: FaultScope & { afterChunks: number }): void;
  slowFirstToken(options: FaultScope & { ms: number }): void;
  /** Removes every fault and reopens the port if it is refusing. Hung requests stay hung. */
  clear(): Promise<void>;
  /** Applies a POST /_sim/faults body. */
  apply(request: FaultRequest): Promise<void>;
  snapshot(): FaultSnapshot;
}

export type SimEvent =
  | { type: "load"; model: string }
  | { type: "ready"; model: string }
  | { type: "unload"; model: string; reason: "expired" | "evicted" | "requested" | "reload" }
  | { type: "refusing"; ms: number }
  | { type: "listening" }
  | { type: "hang"; path: string }
  | { type: "abort"; path: string }
  | { type: "request-end"; path: string; status: number; aborted: boolean };

export interface Simulator {
  /** "http://127.0.0.1:PORT" */
  readonly url: string;
  readonly port: number;
  stats(): SimStats;
  resetStats(): void;
  readonly faults: SimFaults;
  /** Replaces the model library. Loaded models stay loaded, as after `ollama rm`. */
  setModels(models: SimModel[]): void;
  /** Models in memory, longest remaining keep-alive first (the /api/ps order). */
  loaded(): LoadedModel[];
  /** Subscribes to residency, fault and request events; returns the unsubscribe function. */
  on(listener: (event: SimEvent) => void): () => void;
  /** Resolves when the port accepts connections (immediately unless refusing). */
  whenListening(): Promise<void>;
  /** Stops listening, drops every connection (hung ones included) and clears all timers. */
  close(): Promise<void>;
}
