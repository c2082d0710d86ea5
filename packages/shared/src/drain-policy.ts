/**
 * Drain-by-model (SPEC §1, ADR 0007): which queued job the single worker runs next. Pure, so tests feed it
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
    const sameModel = queue.find((job) => job.model === resident);
    if (sameModel) return sameModel;
  }
  return oldest;
}

/**
 * The order in which the queue would drain if nothing else arrived: repeated `pickNext`, with the resident
 * model following each pick. Used for a queued job's `position` and for the benchmark's FIFO comparison.
 */
export function drainOrder(
  queue: readonly QueuedJobRef[],
  resident: string | null,
  now: number,
  starvationMs: number,
): QueuedJobRef[] {
  const rest = [...queue];
  const order: QueuedJobRef[] = [];
  let current = resident;
  while (rest.length > 0) {
    const next = pickNext(rest, current, now, starvationMs)!;
    order.push(next);
    rest.splice(rest.indexOf(next), 1);
    current = next.model;
  }
  return order;
}
