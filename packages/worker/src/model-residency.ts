import { type Logger, normalizeModelName, sameModel } from "@foreman/shared";
import type { TargetClient } from "./target-client.js";

export interface ModelResidencyDeps {
  client: Pick<TargetClient, "ps" | "hasModel" | "unload">;
  logger: Logger;
  /** The always-resident embedder: never unloaded, never counted as the worker model. */
  embedModel: string | undefined;
  /**
   * Called when the target answered a job of another worker model than the one it answered last: a load
   * happened. Counted from answers, not attempts, so a target that is down counts no loads.
   */
  onModelSwitch?: (from: string | null, to: string) => void;
  /** Called when a worker model left the target: unloaded by the switch, or found gone (keep-alive expiry). */
  onModelUnloaded?: (model: string, reason: "switch" | "gone") => void;
  now?: () => number;
}

/**
 * The one owner of "which worker model the target holds". The target runs with two model slots: the
 * embedder, pinned, and one rotating worker model. Before a job of another model runs, the previous worker
 * model is unloaded first, so that when the target loads the new one it is never the embedder that gets
 * evicted. What is resident is only known for sure after the target has answered a job; after a start or
 * an interruption it is asked (`/api/ps`).
 */
export function createModelResidency(deps: ModelResidencyDeps) {
  const { client, logger } = deps;
  const now = deps.now ?? Date.now;
  /** The worker model the target holds, or null when unknown (then /api/ps is asked before the next switch). */
  let resident: string | null = null;
  /** The worker model the target last answered for (or was seen holding): a different answer is a load. */
  let lastLoaded: string | null = null;
  /** The worker model unloaded to make room, until the next answer: that load is a swap. */
  let switchedFrom: string | null = null;
  /** When the target last answered a job: an /api/ps asked before then may predate that load. */
  let lastAnsweredAt = 0;

  async function discover(): Promise<string | null> {
    try {
      const ps = await client.ps();
      const workerModel = ps.models.find((m) => !sameModel(m.name, deps.embedModel));
      const found = workerModel ? normalizeModelName(workerModel.name) : null;
      lastLoaded = found;
      return found;
    } catch {
      return null;
    }
  }

  return {
    /** The worker model believed resident (null when unknown); the drain prefers its jobs. */
    resident: (): string | null => resident,

    /** Gets the target ready for a job of `model`: unloads the previous worker model when it differs. */
    async prepareFor(model: string): Promise<void> {
      if (resident === null) resident = await discover();
      if (resident !== null && sameModel(resident, model)) return;
      const previous = resident;
      // Don't give up the loaded model for one the target does not have: the job will fail with the
      // target's own 404, and the next job for the resident model should not pay a reload.
      if (previous !== null && !(await client.hasModel(model))) return;
      if (previous !== null && !sameModel(previous, deps.embedModel)) {
        try {
          await client.unload(previous);
          logger.info("model unloaded", { model: previous, next_model: model });
          deps.onModelUnloaded?.(previous, "switch");
          // Whatever answers next was loaded in its place (even the same model again, after a failed switch).
          if (lastLoaded !== null && sameModel(lastLoaded, previous)) {
            switchedFrom = previous;
            lastLoaded = null;
          }
        } catch (err) {
          logger.warn("model unload failed", { model: previous, error: (err as Error).message });
        }
      }
      resident = null;
    },

    /** The target answered a job of `model`: it holds that model now. */
    answered(model: string): void {
      const loaded = normalizeModelName(model);
      if (lastLoaded === null || !sameModel(lastLoaded, loaded))
        deps.onModelSwitch?.(lastLoaded ?? switchedFrom, loaded);
      switchedFrom = null;
      resident = lastLoaded = loaded;
      lastAnsweredAt = now();
    },

    /**
     * What the target poller saw resident: a worker model that is no longer there (its keep-alive expired,
     * or someone unloaded it) will cost a load again, so the next answer for it counts as one.
     */
    observeResident(names: readonly string[], askedAt: number): void {
      if (askedAt < lastAnsweredAt) return;
      if (lastLoaded === null || names.some((n) => sameModel(n, lastLoaded!))) return;
      const gone = lastLoaded;
      lastLoaded = null;
      if (resident !== null && sameModel(resident, gone)) resident = null;
      deps.onModelUnloaded?.(gone, "gone");
    },

    /** The run broke off (target lost, worker error): what the target holds is unknown until asked again. */
    forget(): void {
      resident = null;
    },
  };
}

export type ModelResidency = ReturnType<typeof createModelResidency>;
