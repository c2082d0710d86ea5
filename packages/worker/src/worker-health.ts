import type { LeaseHolder } from "@foreman/shared";

export interface WorkerHealth {
  healthy: boolean;
  message: string;
}

/**
 * Whether a worker container is healthy, judged from the worker lease alone. Healthy while some worker
 * holds a fresh lease: the active worker itself, or a standby whose active peer is beating (a standby has
 * nothing else to show). Unhealthy while no worker holds the lease or its heartbeat is stale, because
 * then nothing runs jobs: a live standby would have taken over within the stale bound.
 */
export function judgeWorkerHealth(
  holder: LeaseHolder | null,
  options: { fresh: boolean; hostname: string; now: number },
): WorkerHealth {
  if (!holder) return { healthy: false, message: "no worker holds the worker lease: no worker has started yet" };
  const age = options.now - holder.heartbeatAt;
  const here = holder.hostname === options.hostname;
  const who = here ? `pid ${holder.pid} in this container` : `pid ${holder.pid} on ${holder.hostname}`;
  if (!options.fresh) {
    return { healthy: false, message: `the worker heartbeat is stale: last beat ${age} ms ago, from ${who}` };
  }
  return {
    healthy: true,
    message: here
      ? `active worker: ${who}, heartbeat ${age} ms ago`
      : `standby: the active worker is ${who}, heartbeat ${age} ms ago`,
  };
}
