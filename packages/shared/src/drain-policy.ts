import { type LoadKey, loadKeyText, type ResidentKeys, residentList, sameLoad } from "./load-key.js";
import { sameModel } from "./model-name.js";

/**
 * Drain-by-model (ADR 0007): which queued job the single worker runs next. Pure, so tests feed it
 * tables of worked examples, and the SQL claim (store/claim.ts) implements exactly this on a few indexed rows.
 * "Model" here is the load key (ADR 0025): the model plus its runner options, since a job of the resident
 * model with other runner options makes the target load it again.
 *
 * 1. If the oldest queued job has waited at least `starvationMs`, it runs, whatever its load key: no job
 *    waits forever behind a busy model.
 * 2. Otherwise, the oldest job for a load key now resident runs, the most recently used key first: the
 *    target keeps its loaded models and the queue drains load key by load key, one load per batch instead
 *    of one per request. On a target with more model slots several worker models are resident (ADR 0027).
 * 3. Otherwise (nothing queued for a resident load key, or none resident), the oldest job runs.
 */
export interface QueuedJobRef extends LoadKey {
  id: string;
  createdAt: number;
}

/** `queue` is in queue order (oldest first, by id). */
export function pickNext(
  queue: readonly QueuedJobRef[],
  resident: ResidentKeys,
  now: number,
  starvationMs: number,
): QueuedJobRef | null {
  const oldest = queue[0];
  if (!oldest) return null;
  if (now - oldest.createdAt >= starvationMs) return oldest;
  for (const key of residentList(resident)) {
    const forResident = queue.find((job) => sameLoad(job, key));
    if (forResident) return forResident;
  }
  return oldest;
}

/**
 * The worker's resident load keys after the target answered jobs of `keys`, in that order (model-residency
 * keeps the same list): each answer puts its key first, in place of any key of the same model (the target
 * holds one runner per model, reloaded in place for other runner options), and a model that does not fit
 * in `workerSlots` is the least recently used one, unloaded to make room.
 */
export function residentAfter(resident: ResidentKeys, keys: readonly LoadKey[], workerSlots: number): LoadKey[] {
  let list = [...residentList(resident)];
  for (const key of keys) list = [key, ...list.filter((k) => !sameModel(k.model, key.model))].slice(0, workerSlots);
  return list;
}

/**
 * The order in which the queue would drain if nothing else arrived: what repeated `pickNext` gives, with the
 * resident load keys following each pick (`residentAfter`), computed in one pass. It defines a queued job's
 * `position`, which store/queue-position.ts counts in SQL (a test checks the two agree).
 * At a fixed `now` the starved jobs are a prefix of the queue and drain first, oldest first. After them the
 * groups of the load keys resident then drain, most recently used first: a resident group, once picked,
 * stays the most recent and drains whole, and draining a resident group loads nothing, so the resident set
 * is the same when the next one is picked. Then each other load key's group, in the order of its oldest job
 * (every resident group is empty by then, so a load changes nothing that is still queued).
 */
export function drainOrder(
  queue: readonly QueuedJobRef[],
  resident: ResidentKeys,
  now: number,
  starvationMs: number,
  workerSlots = 1,
): QueuedJobRef[] {
  const order: QueuedJobRef[] = [];
  let i = 0;
  while (i < queue.length && now - queue[i]!.createdAt >= starvationMs) order.push(queue[i++]!);
  const current = residentAfter(resident, order, workerSlots).map(loadKeyText);
  const byLoad = new Map<string, QueuedJobRef[]>();
  for (; i < queue.length; i++) {
    const job = queue[i]!;
    const key = loadKeyText(job);
    const group = byLoad.get(key);
    if (group) group.push(job);
    else byLoad.set(key, [job]);
  }
  for (const key of current) {
    const group = byLoad.get(key);
    if (!group) continue;
    order.push(...group);
    byLoad.delete(key);
  }
  // A Map iterates in insertion order, which is the order of each load key's oldest job.
  for (const group of byLoad.values()) order.push(...group);
  return order;
}
