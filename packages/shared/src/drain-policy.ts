import { type LoadKey, loadKeyText, sameLoad } from "./load-key.js";

/**
 * Drain-by-model (ADR 0007): which queued job the single worker runs next. Pure, so tests feed it
 * tables of worked examples, and the SQL claim (store/claim.ts) implements exactly this on two indexed rows.
 * "Model" here is the load key (ADR 0025): the model plus its runner options, since a job of the resident
 * model with other runner options makes the target load it again.
 *
 * 1. If the oldest queued job has waited at least `starvationMs`, it runs, whatever its load key: no job
 *    waits forever behind a busy model.
 * 2. Otherwise, the oldest job for the load key now resident runs: the target keeps its loaded model and
 *    the queue drains load key by load key, one load per batch instead of one per request.
 * 3. Otherwise (nothing queued for the resident load key, or none resident), the oldest job runs.
 */
export interface QueuedJobRef extends LoadKey {
  id: string;
  createdAt: number;
}

/** `queue` is in queue order (oldest first, by id). */
export function pickNext(
  queue: readonly QueuedJobRef[],
  resident: LoadKey | null,
  now: number,
  starvationMs: number,
): QueuedJobRef | null {
  const oldest = queue[0];
  if (!oldest) return null;
  if (now - oldest.createdAt >= starvationMs) return oldest;
  if (resident !== null) {
    const forResident = queue.find((job) => sameLoad(job, resident));
    if (forResident) return forResident;
  }
  return oldest;
}

/**
 * The order in which the queue would drain if nothing else arrived: what repeated `pickNext` gives, with the
 * resident load key following each pick, computed in one pass. It defines a queued job's `position`, which
 * store/queue-position.ts counts in SQL (a test checks the two agree).
 * At a fixed `now` the starved jobs are a prefix of the queue and drain first, oldest first; after them the
 * current load key's jobs drain, then each other load key's, in the order of their oldest job.
 */
export function drainOrder(
  queue: readonly QueuedJobRef[],
  resident: LoadKey | null,
  now: number,
  starvationMs: number,
): QueuedJobRef[] {
  const order: QueuedJobRef[] = [];
  let i = 0;
  while (i < queue.length && now - queue[i]!.createdAt >= starvationMs) order.push(queue[i++]!);
  const last = order.length > 0 ? order.at(-1)! : resident;
  const current = last === null ? null : loadKeyText(last);
  const byLoad = new Map<string, QueuedJobRef[]>();
  for (; i < queue.length; i++) {
    const job = queue[i]!;
    const key = loadKeyText(job);
    const group = byLoad.get(key);
    if (group) group.push(job);
    else byLoad.set(key, [job]);
  }
  if (current !== null && byLoad.has(current)) {
    order.push(...byLoad.get(current)!);
    byLoad.delete(current);
  }
  // A Map iterates in insertion order, which is the order of each load key's oldest job.
  for (const group of byLoad.values()) order.push(...group);
  return order;
}
