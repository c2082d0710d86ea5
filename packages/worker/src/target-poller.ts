import { type Logger, type ResidentModel, type Store, sameModel } from "@foreman/shared";
import type { TargetClient } from "./target-client.js";

export interface TargetPollerOptions {
  client: TargetClient;
  store: Store;
  logger: Logger;
  intervalMs: number;
  embedModel: string | undefined;
  now?: () => number;
  random?: () => number;
  /** Called when the target becomes reachable again (the queue retries at once). */
  onUp?: () => void;
  /** Called with the model names of each successful /api/ps and when it was asked (for the residency module). */
  onResident?: (names: string[], askedAt: number) => void;
  /** While the target is down it is probed with capped exponential backoff and jitter up to this (ms). */
  downProbeMaxMs?: number;
  /** How many jobs wait: while the target is down, said in the log at most once per `waitLogEveryMs`. */
  queuedCount?: () => number;
  waitLogEveryMs?: number;
  /** Called when the target is found unreachable (at the first poll too); the wake action may run. */
  onDown?: () => void;
}

export interface PollResult {
  reachable: boolean;
  version: string | null;
  resident: ResidentModel[];
  error: string | null;
  pinned: boolean;
}

/**
 * Watches the target: polls /api/version and /api/ps, records what it saw for the gateway's readiness
 * route, logs each up/down change once, and keeps the embedder resident
 * by pinning it (`keep_alive: -1`) whenever /api/ps does not list it. An unreachable target is only ever
 * recorded and logged: it never stops the worker.
 */
export function createTargetPoller(options: TargetPollerOptions) {
  const { client, store, logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const downProbeMaxMs = options.downProbeMaxMs ?? 2000;
  const waitLogEveryMs = options.waitLogEveryMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let lastReachable: boolean | null = null;
  let downSince: number | null = null;
  let lastWaitLogAt = 0;
  let probeDelayMs = 0;
  let inFlight: Promise<PollResult> | null = null;

  /** Records an up/down change, logging it once: down with the error, up with how long it was down. */
  function observe(reachable: boolean, result: Pick<PollResult, "version" | "resident" | "error">): void {
    if (reachable === lastReachable) return;
    const previous = lastReachable;
    lastReachable = reachable;
    // Recorded before it is logged: whoever reads the log line and then asks the store finds it there.
    if (reachable) {
      const downForMs = downSince === null ? null : now() - downSince;
      downSince = null;
      probeDelayMs = 0;
      store.systemEvents.record("target.up", {
        version: result.version,
        ...(downForMs !== null ? { down_for_ms: downForMs } : {}),
      });
      logger.info("target up", {
        url: client.baseUrl,
        version: result.version,
        resident: result.resident.map((m) => m.name),
        ...(downForMs !== null ? { down_for_ms: downForMs } : {}),
      });
      if (previous === false) options.onUp?.();
    } else {
      downSince = now();
      lastWaitLogAt = downSince;
      store.systemEvents.record("target.down", { error: result.error });
      logger.warn("target down", { url: client.baseUrl, error: result.error });
      options.onDown?.();
    }
  }

  /** While down: says how many jobs wait and since when, at most once per period (not on every probe). */
  function reportWaiting(): void {
    if (lastReachable !== false || downSince === null || !options.queuedCount) return;
    if (now() - lastWaitLogAt < waitLogEveryMs) return;
    const waiting = options.queuedCount();
    if (waiting === 0) return;
    lastWaitLogAt = now();
    logger.warn("jobs waiting for the target", {
      queued: waiting,
      down_since: new Date(downSince).toISOString(),
      down_for_ms: now() - downSince,
    });
  }

  /** The next poll: the regular interval while up; capped exponential backoff with jitter while down. */
  function nextDelayMs(): number {
    if (lastReachable !== false) return options.intervalMs;
    probeDelayMs = probeDelayMs === 0 ? 250 : Math.min(probeDelayMs * 2, downProbeMaxMs);
    return Math.round(probeDelayMs * (0.5 + random() / 2));
  }

  async function poll(): Promise<PollResult> {
    const askedAt = now();
    let result: PollResult;
    try {
      const version = await client.version();
      let ps = await client.ps();
      let pinned = false;
      const embedModel = options.embedModel;
      // /api/ps names models with their tag ("nomic-embed-text:latest") whatever the load request said.
      if (embedModel && !ps.models.some((m) => sameModel(m.name, embedModel) || sameModel(m.model, embedModel))) {
        await client.loadEmbedder(embedModel, -1);
        pinned = true;
        store.metrics.increment("foreman_model_loads_total", { model: embedModel });
        store.systemEvents.record("model.loaded", { model: embedModel, embedder: true });
        logger.info("embedder pinned", { model: embedModel, reason: "missing from /api/ps" });
        ps = await client.ps();
      }
      result = {
        reachable: true,
        version: version.version,
        resident: ps.models.map((m) => ({ name: m.name, expires_at: m.expires_at, size_vram: m.size_vram })),
        error: null,
        pinned,
      };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { cause?: { code?: string } };
      const code = e.code ?? e.cause?.code;
      result = {
        reachable: false,
        version: null,
        resident: [],
        error: code ? `${code}: ${e.message}` : e.message,
        pinned: false,
      };
    }
    store.target.record({
      reachable: result.reachable,
      version: result.version,
      resident: result.resident,
      lastCheckedAt: now(),
      lastError: result.error,
    });
    observe(result.reachable, result);
    if (result.reachable)
      options.onResident?.(
        result.resident.map((m) => m.name),
        askedAt,
      );
    reportWaiting();
    return result;
  }

  /** One poll; concurrent callers share the poll already under way. */
  function runOnce(): Promise<PollResult> {
    inFlight ??= poll().finally(() => {
      inFlight = null;
    });
    return inFlight;
  }

  function schedule(): void {
    if (timer) clearTimeout(timer);
    timer = setTimeout(async () => {
      timer = undefined;
      await runOnce().catch((err: unknown) => logger.warn("target poll failed", { error: String(err) }));
      if (running && !timer) schedule();
    }, nextDelayMs());
  }

  return {
    runOnce,
    /** Whether the last poll reached the target (null before the first one). */
    isReachable: () => lastReachable,
    /** False only while the target is known to be down: the queue claims nothing then. */
    isUp: () => lastReachable !== false,
    /** When the target went down (null while up). */
    downSince: () => downSince,
    /**
     * A job found the target unreachable: it is down now, without waiting for the next regular poll, and
     * is probed with backoff from here on until it answers.
     */
    markDown(error: string): void {
      if (lastReachable === false) return;
      store.target.record({ reachable: false, version: null, resident: [], lastCheckedAt: now(), lastError: error });
      observe(false, { version: null, resident: [], error });
      if (running) schedule();
    },
    start(): void {
      if (running) return;
      running = true;
      void runOnce()
        .catch((err: unknown) => logger.warn("target poll failed", { error: String(err) }))
        .finally(() => running && schedule());
    },
    async stop(): Promise<void> {
      running = false;
      if (timer) clearTimeout(timer);
      await inFlight?.catch(() => undefined);
    },
  };
}

export type TargetPoller = ReturnType<typeof createTargetPoller>;
