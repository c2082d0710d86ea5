import { type LoadKey, type Logger, normalizeModelName, sameLoad, sameModel } from "@foreman/shared";
import type { TargetClient } from "./target-client.js";

export interface ModelResidencyDeps {
  client: Pick<TargetClient, "ps" | "hasModel" | "unload">;
  logger: Logger;
  /** The always-resident embedder: never unloaded, never counted as the worker model. */
  embedModel: string | undefined;
  /**
   * Called when the target answered a job of another load key (model and runner options) than the one it
   * answered last: a load happened (the same model with other runner options is reloaded). Counted from
   * answers, not attempts, so a target that is down counts no loads.
   */
  onModelSwitch?: (from: LoadKey | null, to: LoadKey) => void;
  /** Called when a worker model left the target: unloaded by the switch, or found gone (keep-alive expiry). */
  onModelUnloaded?: (model: string, reason: "switch" | "gone") => void;
  now?: () => number;
}

/**
 * The one owner of "which worker model the target holds", and with which runner options (its load key, ADR
 * 0025): a job of the same model with other runner options makes the target load it again, so it is a
 * switch like another model, counted as a load. The target runs with two model slots: the
 * embedder, pinned, and one rotating worker model. Before a job of another model runs, the previous worker
 * model is unloaded first, so that when the target loads the new one it is never the embedder that gets
 * evicted. What is resident is only known for sure after the target has answered a job; after a start or
 * an interruption it is asked (`/api/ps`).
 */
export function createModelResidency(deps: ModelResidencyDeps) {
  const { client, logger } = deps;
  const now = deps.now ?? Date.now;
  /** The worker model the target holds, or null when unknown (then /api/ps is asked before the next switch). */
  let resident: LoadKey | null = null;
  /** The load key the target last answered for (or was seen holding): a different answer is a load. */
  let lastLoaded: LoadKey | null = null;
  /** The load key unloaded to make room, until the next answer: that load is a swap. */
  let switchedFrom: LoadKey | null = null;
  /** When the target last answered a job: an /api/ps asked before then may predate that load. */
  let lastAnsweredAt = 0;

  /**
   * /api/ps names the model but not the runner options it was loaded with: a model found there is taken to
   * hold its defaults (no runner options), which is what a job that sets none expects.
   */
  async function discover(): Promise<LoadKey | null> {
    try {
      const ps = await client.ps();
      const workerModel = ps.models.find((m) => !sameModel(m.name, deps.embedModel));
      const found = workerModel ? { model: normalizeModelName(workerModel.name), runnerOptions: "" } : null;
      lastLoaded = found;
      return found;
    } catch {
      return null;
    }
  }

  return {
    /** The worker model believed resident, with its runner options (null when unknown); the drain prefers its jobs. */
    resident: (): LoadKey | null => resident,

    /**
     * Gets the target ready for a job of load key `next`: unloads the previous worker model when the model
     * differs. The same model with other runner options is not unloaded here: the target reloads it in
     * place (needsReload), with no other model to make room for.
     */
    async prepareFor(next: LoadKey): Promise<void> {
      if (resident === null) resident = await discover();
      if (resident !== null && sameLoad(resident, next)) return;
      const previous = resident;
      if (previous !== null && sameModel(previous.model, next.model)) {
        resident = null;
        return;
      }
      // Don't give up the loaded model for one the target does not have: the job will fail with the
      // target's own 404, and the next job for the resident model should not pay a reload.
      if (previous !== null && !(await client.hasModel(next.model))) return;
      if (previous !== null && !sameModel(previous.model, deps.embedModel)) {
        try {
          await client.unload(previous.model);
          deps.onModelUnloaded?.(previous.model, "switch");
          logger.info("model unloaded", { model: previous.model, next_model: next.model });
          // Whatever answers next was loaded in its place (even the same model again, after a failed switch).
          if (lastLoaded !== null && sameModel(lastLoaded.model, previous.model)) {
            switchedFrom = previous;
            lastLoaded = null;
          }
        } catch (err) {
          logger.warn("model unload failed", { model: previous.model, error: (err as Error).message });
        }
      }
      resident = null;
    },

    /** The target answered a job of load key `key`: it holds that model, with those runner options, now. */
    answered(key: LoadKey): void {
      const loaded = { model: normalizeModelName(key.model), runnerOptions: key.runnerOptions };
      if (!sameLoad(lastLoaded, loaded)) deps.onModelSwitch?.(lastLoaded ?? switchedFrom, loaded);
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
      if (lastLoaded === null || names.some((n) => sameModel(n, lastLoaded!.model))) return;
      const gone = lastLoaded;
      lastLoaded = null;
      if (resident !== null && sameModel(resident.model, gone.model)) resident = null;
      deps.onModelUnloaded?.(gone.model, "gone");
    },

    /** The run broke off (target lost, worker error): what the target holds is unknown until asked again. */
    forget(): void {
      resident = null;
    },
  };
}

export type ModelResidency = ReturnType<typeof createModelResidency>;
