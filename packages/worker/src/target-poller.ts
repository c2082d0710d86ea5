import { type Logger, type ResidentModel, type Store, sameModel } from "@foreman/shared";
import type { TargetClient } from "./target-client.js";

export interface TargetPollerOptions {
  client: TargetClient;
  store: Store;
  logger: Logger;
  intervalMs: number;
  embedModel: string | undefined;
  now?: () => number;
  /** Called when the target becomes reachable again (the queue retries at once). */
  onUp?: () => void;
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
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let lastReachable: boolean | null = null;
  let inFlight: Promise<PollResult> | null = null;

  async function poll(): Promise<PollResult> {
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
    if (result.reachable !== lastReachable) {
      if (result.reachable) {
        if (lastReachable === false) options.onUp?.();
        logger.info("target up", {
          url: client.baseUrl,
          version: result.version,
          resident: result.resident.map((m) => m.name),
        });
      } else {
        logger.warn("target down", { url: client.baseUrl, error: result.error });
      }
      lastReachable = result.reachable;
    }
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
    timer = setTimeout(async () => {
      await runOnce().catch((err: unknown) => logger.warn("target poll failed", { error: String(err) }));
      if (running) schedule();
    }, options.intervalMs);
  }

  return {
    runOnce,
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
