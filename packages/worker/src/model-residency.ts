import { type LoadKey, type Logger, normalizeModelName, sameLoad, sameModel } from "@foreman/shared";
import type { TargetClient } from "./target-client.js";

export interface ModelResidencyDeps {
  client: Pick<TargetClient, "ps" | "hasModel" | "unload">;
  logger: Logger;
  /** The always-resident embedder: never unloaded, never counted as a worker model, never in a worker slot. */
  embedModel: string | undefined;
  /**
   * How many worker models the target holds at once: its model slots (FOREMAN_TARGET_MODEL_SLOTS) but the
   * one kept for the embedder. 1 when not given, the two-slot target.
   */
  workerSlots?: number;
  /**
   * Called when the target answered a job of a load key (model and runner options) it was not known to
   * hold: a load happened (the same model with other runner options is reloaded). `from` is the worker
   * model it took the place of (the same model loaded with other options, the one unloaded to make room, or
   * the least recently used one when every slot was taken), null when it went into a free slot. Counted from
   * answers, not attempts, so a target that is down counts no loads.
   */
  onModelSwitch?: (from: LoadKey | null, to: LoadKey) => void;
  /** Called when a worker model left the target: unloaded to make room, or found gone (keep-alive expiry). */
  onModelUnloaded?: (model: string, reason: "switch" | "gone") => void;
  now?: () => number;
}

/**
 * The one owner of "which worker models the target holds", and with which runner options (their load keys,
 * ADR 0025): a job of a resident model with other runner options makes the target load it again, so it is a
 * switch like another model, counted as a load. The target keeps the embedder, pinned, in a slot of its own,
 * and `workerSlots` rotating worker models (one on the default two-slot target, ADR 0027), least recently
 * used last. Before a job of a model that is not resident runs and every worker slot is taken, the least
 * recently used worker model is unloaded first, so that when the target loads the new one it is never the
 * embedder that gets evicted. What is resident is only known for sure after the target has answered a job;
 * after a start or an interruption it is asked (`/api/ps`).
 */
export function createModelResidency(deps: ModelResidencyDeps) {
  const { client, logger } = deps;
  const now = deps.now ?? Date.now;
  const slots = Math.max(1, deps.workerSlots ?? 1);
  /**
   * The worker load keys the target holds, most recently used first, one per model and at most `slots`;
   * null when unknown (then /api/ps is asked before the next switch).
   */
  let resident: LoadKey[] | null = null;
  /** The load keys the target last answered for (or was seen holding), most recent first: another answer is a load. */
  let loaded: LoadKey[] = [];
  /** The load key unloaded to make room, until the next answer: that load is a swap. */
  let switchedFrom: LoadKey | null = null;
  /** When the target last answered a job: an /api/ps asked before then may predate that load. */
  let lastAnsweredAt = 0;

  const isEmbedder = (model: string) => deps.embedModel !== undefined && sameModel(model, deps.embedModel);
  /** `key` first, in place of any key of its model (the target holds one runner per model), cut to `slots`. */
  const withFirst = (list: readonly LoadKey[], key: LoadKey) =>
    [key, ...list.filter((k) => !sameModel(k.model, key.model))].slice(0, slots);

  /**
   * /api/ps names the models but not the runner options they were loaded with: a model found there is taken
   * to hold its defaults (no runner options), which is what a job that sets none expects. Ollama lists them
   * by expiry, latest first, which with one keep-alive for all is most recently used first.
   */
  async function discover(): Promise<LoadKey[] | null> {
    try {
      const ps = await client.ps();
      const found = ps.models
        .filter((m) => !isEmbedder(m.name))
        .slice(0, slots)
        .map((m) => ({ model: normalizeModelName(m.name), runnerOptions: "" }));
      loaded = found;
      return found;
    } catch {
      return null;
    }
  }

  return {
    /** The most recently used worker load key believed resident (null when none or unknown). */
    resident: (): LoadKey | null => resident?.[0] ?? null,

    /** Every worker load key believed resident, most recently used first (empty when unknown): the drain prefers their jobs. */
    residents: (): readonly LoadKey[] => resident ?? [],

    /**
     * Gets the target ready for a job of load key `next`: when its model is not resident and every worker
     * slot is taken, unloads the least recently used worker model. The same model with other runner options
     * is not unloaded here: the target reloads it in place (needsReload), with no other model to make room for.
     */
    async prepareFor(next: LoadKey): Promise<void> {
      // The embedder has its own slot: a job of it needs no room, and no worker model gives way for it.
      if (isEmbedder(next.model)) return;
      if (resident === null) resident = await discover();
      // Unknown (the target did not answer /api/ps): nothing is unloaded; the job finds out itself.
      if (resident === null) return;
      if (resident.some((k) => sameLoad(k, next))) return;
      if (resident.some((k) => sameModel(k.model, next.model))) {
        resident = resident.filter((k) => !sameModel(k.model, next.model));
        return;
      }
      if (resident.length < slots) return;
      // Don't give up a loaded model for one the target does not have: the job will fail with the
      // target's own 404, and the next job for the resident model should not pay a reload.
      if (!(await client.hasModel(next.model))) return;
      const victim = resident.at(-1)!;
      resident = resident.slice(0, -1);
      try {
        await client.unload(victim.model);
        deps.onModelUnloaded?.(victim.model, "switch");
        logger.info("model unloaded", { model: victim.model, next_model: next.model });
        // Whatever answers next was loaded in its place (even the same model again, after a failed switch).
        const unloaded = loaded.find((k) => sameModel(k.model, victim.model));
        if (unloaded) {
          switchedFrom = unloaded;
          loaded = loaded.filter((k) => k !== unloaded);
        }
      } catch (err) {
        logger.warn("model unload failed", { model: victim.model, error: (err as Error).message });
      }
    },

    /** The target answered a job of load key `key`: it holds that model, with those runner options, now. */
    answered(key: LoadKey): void {
      lastAnsweredAt = now();
      if (isEmbedder(key.model)) return;
      const answered = { model: normalizeModelName(key.model), runnerOptions: key.runnerOptions };
      if (!loaded.some((k) => sameLoad(k, answered))) {
        const others = loaded.filter((k) => !sameModel(k.model, answered.model));
        const from =
          loaded.find((k) => sameModel(k.model, answered.model)) ??
          switchedFrom ??
          (others.length >= slots ? others.at(-1)! : null);
        deps.onModelSwitch?.(from, answered);
      }
      switchedFrom = null;
      // Unknown after an interruption: what it last answered for is the best guess until /api/ps says otherwise.
      resident = withFirst(resident ?? loaded, answered);
      loaded = withFirst(loaded, answered);
    },

    /**
     * What the target poller saw resident: a worker model that is no longer there (its keep-alive expired,
     * or someone unloaded it) will cost a load again, so the next answer for it counts as one.
     */
    observeResident(names: readonly string[], askedAt: number): void {
      if (askedAt < lastAnsweredAt) return;
      const there = (k: LoadKey) => names.some((n) => sameModel(n, k.model));
      const gone = loaded.filter((k) => !there(k));
      if (resident !== null) resident = resident.filter(there);
      if (gone.length === 0) return;
      loaded = loaded.filter(there);
      for (const k of gone) deps.onModelUnloaded?.(k.model, "gone");
    },

    /** The run broke off (target lost, worker error): what the target holds is unknown until asked again. */
    forget(): void {
      resident = null;
    },
  };
}

export type ModelResidency = ReturnType<typeof createModelResidency>;
