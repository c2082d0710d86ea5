import { normalizeModelName, sameModel } from "./model-name.js";

/**
 * Drain-by-model (ADR 0007): which queued job the single worker runs next. Pure, so tests feed it
 * tables of worked examples, and the SQL claim (store/claim.ts) implements exactly this on two indexed rows.
 *
 * 1. If the oldest queued job has waited at least `starvationMs`, it runs, whatever its model: no job
 *    waits forever behind a busy model.
 * 2. Otherwise, the oldest job for the model now resident runs: the target keeps its loaded model and
 *    the queue drains model by model, one load per batch instead of one per request.
 * 3. Otherwise (nothing queued for the resident model, or none resident), the oldest job runs.
 */
export interface QueuedJobRef {
  id: string;
  model: string;
  createdAt: number;
}

/** `queue` is in queue order (oldest first, by id). */
export function pickNext(
  queue: readonly QueuedJobRef[],
  resident: string | null,
  now: number,
  starvationMs: number,
): QueuedJobRef | null {
  const oldest = queue[0];
  if (!oldest) return null;
  if (now - oldest.createdAt >= starvationMs) return oldest;
  if (resident !== null) {
    const forResident = queue.find((job) => sameModel(job.model, resident));
    if (forResident) return forResident;
  }
  return oldest;
}

/**
 * The order in which the queue would drain if nothing else arrived: what repeated `pickNext` gives, with the
 * resident model following each pick, computed in one pass. It defines a queued job's `position`, which
 * store/queue-position.ts counts in SQL (a test checks the two agree).
 * At a fixed `now` the starved jobs are a prefix of the queue and drain first, oldest first; after them the
 * current model's jobs drain, then each other model's, in the order of their oldest job.
 */
export function drainOrder(
  queue: readonly QueuedJobRef[],
  resident: string | null,
  now: number,
  starvationMs: number,
): QueuedJobRef[] {
  const order: QueuedJobRef[] = [];
  let i = 0;
  while (i < queue.length && now - queue[i]!.createdAt >= starvationMs) order.push(queue[i++]!);
  const last = order.length > 0 ? order.at(-1)!.model : resident;
  const current = last === null ? null : normalizeModelName(last);
  const byModel = new Map<string, QueuedJobRef[]>();
  for (; i < queue.length; i++) {
    const job = queue[i]!;
    const model = normalizeModelName(job.model);
    const group = byModel.get(model);
    if (group) group.push(job);
    else byModel.set(model, [job]);
  }
  if (current !== null && byModel.has(current)) {
    order.push(...byModel.get(current)!);
    byModel.delete(current);
  }
  // A Map iterates in insertion order, which is the order of each model's oldest job.
  for (const group of byModel.values()) order.push(...group);
  return order;
}
