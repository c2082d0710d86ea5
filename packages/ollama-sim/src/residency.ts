import type { SimClock } from "./clock.js";
import { formatGoTime, MAX_GO_DURATION_MS } from "./go-time.js";
import type { LoadedModel } from "./interfaces.js";
import type { CatalogModel } from "./model-catalog.js";

/**
 * Why a model left memory: its keep-alive ran out, room was needed, a keep_alive 0 request, or a request
 * with other runner options (num_ctx, num_batch…) needed it loaded again.
 */
export type UnloadReason = "expired" | "evicted" | "requested" | "reload";

export interface ResidencyObserver {
  loadStarted(model: CatalogModel): void;
  loadFinished(model: CatalogModel): void;
  unloaded(model: CatalogModel, reason: UnloadReason): void;
}

export interface ResidencyOptions {
  /** OLLAMA_MAX_LOADED_MODELS; 0 or less means no limit. */
  maxLoaded: number;
  /** OLLAMA_KEEP_ALIVE in ms (Infinity: forever). */
  defaultKeepAliveMs: number;
  clock: SimClock;
  observer: ResidencyObserver;
}

/** A request's hold on a loaded model; releasing it lets the keep-alive countdown start. */
export interface Lease {
  readonly model: CatalogModel;
  release(): void;
}

export class SchedulingCancelled extends Error {}

/** A model in memory (sched.go's runnerRef). */
interface Runner {
  model: CatalogModel;
  state: "loading" | "ready";
  refCount: number;
  /** Keep-alive in ms; Infinity for "forever", 0 for "unload when idle". */
  sessionMs: number;
  expireTimer: unknown;
  /** Set when the runner last went idle (sched.go sets expiresAt there). */
  expiresAt: number | undefined;
  loadedAt: number;
  ready: Promise<void>;
  loadTimer: NodeJS.Timeout | undefined;
  markReady: () => void;
  /** Chosen as the victim to make room: its unload counts as an eviction. */
  evicting: boolean;
  /** Loaded with these runner options (runnerOptionsKey); a request with others reloads it. */
  runnerOptions: string;
  /** A request with other runner options waits for it to go, then loads it again. */
  reloading: boolean;
  /** A keep_alive 0 request asked for it to go. */
  unloadRequested: boolean;
  gone: boolean;
  unloaded: Promise<void>;
  markUnloaded: () => void;
}

interface Pending {
  model: CatalogModel;
  runnerOptions: string;
  keepAliveMs: number | undefined;
  signal: AbortSignal | undefined;
  resolve(runner: Runner): void;
  reject(error: Error): void;
}

/** setTimeout's ceiling; longer keep-alives re-arm until they are due. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Which models are in memory, mirroring Ollama's scheduler (server/sched.go): requests are placed
 * one at a time in arrival order (processPending); a request for a loaded or loading model shares
 * it; at the loaded-model limit the idle model with the shortest keep-alive is evicted, or, if
 * none is idle, the busy one with the shortest keep-alive is drained and then evicted, while every
 * later request waits. A pinned model (negative keep_alive) is last in that order but not exempt:
 * Ollama evicts it too when it is the only candidate, which is why foreman unloads explicitly.
 */
export class Residency {
  private readonly runners = new Map<string, Runner>();
  private readonly pending: Pending[] = [];
  private draining = false;
  private closed = false;

  constructor(private readonly options: ResidencyOptions) {}

  /**
   * Waits until `model` is loaded and holds it. `keepAliveMs` undefined keeps the model's current
   * keep-alive (or the default on a fresh load), as sched.go's useLoadedRunner does.
   */
  async acquire(
    model: CatalogModel,
    keepAliveMs: number | undefined,
    signal?: AbortSignal,
    runnerOptions = "",
  ): Promise<Lease> {
    const runner = await new Promise<Runner>((resolve, reject) => {
      this.pending.push({ model, runnerOptions, keepAliveMs, signal, resolve, reject });
      void this.drain();
    });
    let released = false;
    const lease: Lease = {
      model,
      release: () => {
        if (released) return;
        released = true;
        this.release(runner);
      },
    };
    if (runner.state === "loading") {
      // The caller may give up during the load; the load goes on, the hold ends now (as in
      // Ollama, where the finished request drops its reference while the runner keeps loading).
      await waitUnlessAborted(runner.ready, signal);
    }
    if (runner.gone || signal?.aborted) {
      lease.release();
      throw new SchedulingCancelled(runner.gone ? "model unloaded" : "request canceled");
    }
    return lease;
  }

  /** keep_alive 0 with no prompt (sched.go expireRunner): unload now, or once the model is idle. */
  expire(model: CatalogModel): void {
    const runner = this.runners.get(model.key);
    if (!runner) return;
    runner.expiresAt = this.options.clock.now();
    this.stopExpireTimer(runner);
    runner.sessionMs = 0;
    runner.unloadRequested = true;
    if (runner.refCount <= 0) this.unload(runner, "requested");
  }

  isLoaded(key: string): boolean {
    return this.runners.has(key);
  }

  /** Loaded models, longest remaining keep-alive first (routes.go PsHandler's order). */
  snapshot(): LoadedModel[] {
    const now = this.options.clock.now();
    const rows = [...this.runners.values()].map((runner) => {
      const expiresAt = this.expiresAt(runner, now);
      return {
        expiresAt,
        row: {
          name: runner.model.name,
          state: runner.state,
          activeRequests: runner.refCount,
          keepAliveMs: Number.isFinite(runner.sessionMs) ? runner.sessionMs : null,
          expiresAt: formatGoTime(expiresAt, false),
          loadedAt: formatGoTime(runner.loadedAt, false),
          sizeVram: runner.model.sizeBytes,
        } satisfies LoadedModel,
        runner,
      };
    });
    rows.sort((a, b) => Math.floor(b.expiresAt / 1000) - Math.floor(a.expiresAt / 1000));
    return rows.map((r) => r.row);
  }

  /** The catalog entries of the loaded models, in snapshot order. */
  loadedModels(): Array<{ model: CatalogModel; expiresAt: number }> {
    const now = this.options.clock.now();
    return [...this.runners.values()]
      .map((runner) => ({ model: runner.model, expiresAt: this.expiresAt(runner, now) }))
      .sort((a, b) => Math.floor(b.expiresAt / 1000) - Math.floor(a.expiresAt / 1000));
  }

  /** Forgets everything without counting unloads: the server is going away. */
  close(): void {
    this.closed = true;
    for (const runner of this.runners.values()) {
      this.stopExpireTimer(runner);
      if (runner.loadTimer) clearTimeout(runner.loadTimer);
      runner.gone = true;
      runner.markReady();
      runner.markUnloaded();
    }
    this.runners.clear();
    for (const p of this.pending.splice(0)) p.reject(new SchedulingCancelled("server closed"));
  }

  private expiresAt(runner: Runner, now: number): number {
    // While requests hold it (or before it first went idle) Ollama estimates now + keep-alive.
    const base = runner.refCount > 0 || runner.expiresAt === undefined ? now : undefined;
    if (base === undefined) return runner.expiresAt as number;
    return base + (Number.isFinite(runner.sessionMs) ? runner.sessionMs : MAX_GO_DURATION_MS);
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        const next = this.pending[0] as Pending;
        await this.schedule(next);
        this.pending.shift();
      }
    } finally {
      this.draining = false;
    }
  }

  /** One pass of sched.go processPending for one request. */
  private async schedule(p: Pending): Promise<void> {
    for (;;) {
      if (this.closed) return p.reject(new SchedulingCancelled("server closed"));
      if (p.signal?.aborted) return p.reject(new SchedulingCancelled("request canceled"));
      const runner = this.runners.get(p.model.key);
      // sched.go needsReload: other runner options need the model loaded again, once its requests end.
      if (runner && runner.runnerOptions !== p.runnerOptions) {
        await this.reload(runner);
        continue;
      }
      if (runner) return this.useLoadedRunner(runner, p);
      const max = this.options.maxLoaded;
      if (max > 0 && this.runners.size >= max) {
        const victim = this.findRunnerToUnload();
        if (victim) await this.evict(victim);
        continue;
      }
      return this.startLoad(p);
    }
  }

  private useLoadedRunner(runner: Runner, p: Pending): void {
    runner.refCount++;
    this.stopExpireTimer(runner);
    if (p.keepAliveMs !== undefined) runner.sessionMs = p.keepAliveMs;
    p.resolve(runner);
  }

  private startLoad(p: Pending): void {
    const now = this.options.clock.now();
    let markReady = () => {};
    let markUnloaded = () => {};
    const runner: Runner = {
      model: p.model,
      state: "loading",
      refCount: 1,
      sessionMs: p.keepAliveMs ?? this.options.defaultKeepAliveMs,
      expireTimer: undefined,
      expiresAt: undefined,
      loadedAt: now,
      ready: new Promise<void>((resolve) => {
        markReady = resolve;
      }),
      loadTimer: undefined,
      markReady: () => markReady(),
      evicting: false,
      runnerOptions: p.runnerOptions,
      reloading: false,
      unloadRequested: false,
      gone: false,
      unloaded: new Promise<void>((resolve) => {
        markUnloaded = resolve;
      }),
      markUnloaded: () => markUnloaded(),
    };
    this.runners.set(p.model.key, runner);
    this.options.observer.loadStarted(p.model);
    runner.loadTimer = setTimeout(() => {
      runner.loadTimer = undefined;
      if (runner.gone) return;
      runner.state = "ready";
      this.options.observer.loadFinished(runner.model);
      runner.markReady();
    }, p.model.loadMs);
    p.resolve(runner);
  }

  /**
   * sched.go findRunnerToUnload: sort by keep-alive (shortest first; "forever" is the largest
   * duration), then by name; the first idle one wins, else the first of all. Ollama breaks ties by
   * the model's blob path, a content hash; the name is the deterministic stand-in.
   */
  private findRunnerToUnload(): Runner | undefined {
    const list = [...this.runners.values()].sort(
      (a, b) => a.sessionMs - b.sessionMs || (a.model.name < b.model.name ? -1 : a.model.name > b.model.name ? 1 : 0),
    );
    return list.find((runner) => runner.refCount <= 0) ?? list[0];
  }

  private async evict(victim: Runner): Promise<void> {
    this.stopExpireTimer(victim);
    victim.sessionMs = 0;
    victim.evicting = true;
    if (victim.refCount <= 0) this.unload(victim, "evicted");
    await victim.unloaded;
  }

  private async reload(runner: Runner): Promise<void> {
    this.stopExpireTimer(runner);
    runner.sessionMs = 0;
    runner.reloading = true;
    if (runner.refCount <= 0) this.unload(runner, "reload");
    await runner.unloaded;
  }

  private release(runner: Runner): void {
    runner.refCount--;
    if (runner.refCount > 0 || runner.gone) return;
    if (runner.sessionMs <= 0) {
      const reason = runner.evicting
        ? "evicted"
        : runner.reloading
          ? "reload"
          : runner.unloadRequested
            ? "requested"
            : "expired";
      this.unload(runner, reason);
      return;
    }
    const now = this.options.clock.now();
    if (!Number.isFinite(runner.sessionMs)) {
      runner.expiresAt = now + MAX_GO_DURATION_MS;
      return;
    }
    runner.expiresAt = now + runner.sessionMs;
    this.armExpireTimer(runner);
  }

  private armExpireTimer(runner: Runner): void {
    const remaining = (runner.expiresAt as number) - this.options.clock.now();
    runner.expireTimer = this.options.clock.setTimeout(
      () => {
        runner.expireTimer = undefined;
        if (runner.gone || runner.refCount > 0) return;
        if (this.options.clock.now() < (runner.expiresAt as number)) return this.armExpireTimer(runner);
        this.unload(runner, "expired");
      },
      Math.min(Math.max(remaining, 0), MAX_TIMER_MS),
    );
  }

  private stopExpireTimer(runner: Runner): void {
    if (runner.expireTimer !== undefined) {
      this.options.clock.clearTimeout(runner.expireTimer);
      runner.expireTimer = undefined;
    }
  }

  private unload(runner: Runner, reason: UnloadReason): void {
    if (runner.gone) return;
    runner.gone = true;
    this.stopExpireTimer(runner);
    if (runner.loadTimer) {
      clearTimeout(runner.loadTimer);
      runner.loadTimer = undefined;
    }
    if (this.runners.get(runner.model.key) === runner) this.runners.delete(runner.model.key);
    this.options.observer.unloaded(runner.model, reason);
    runner.markReady();
    runner.markUnloaded();
  }
}

function waitUnlessAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
