import type http from "node:http";
import {
  type ForemanConfig,
  followJobRelay,
  frameRelayData,
  frameRelayEnd,
  type JobRecord,
  type Logger,
  type RelayEnd,
  type RelayFraming,
  relayFraming,
  type Store,
} from "@foreman/shared";

import { cancelJob } from "./jobs/cancel.js";
import { queuePosition } from "./jobs/queue-position.js";
import type { GatewayMetrics } from "./ops/metrics.js";
import type { ResponseDrain } from "./response-drain.js";
import { contentTypeFor, emptyChunk, requestedFraming, waitLimitError } from "./sync-wait.js";

export interface RelayResponseDeps {
  config: Pick<ForemanConfig, "dataDir" | "relayPollMs" | "syncWaitMs" | "syncKeepaliveMs" | "starvationMs">;
  store: Store;
  logger: Logger;
  wake: () => void;
  /** Shutdown's hold on open responses (none in tests that do not shut down). */
  drain?: ResponseDrain;
  /** Where the relay lag (chunk appended by the worker → sent here) is observed. */
  metrics?: Pick<GatewayMetrics, "relayLag">;
}

/**
 * Answers a synchronous caller from its job's relay, exactly as the target answered the worker. By default
 * no header is sent before the worker's first event (the target's status and content type, or its error),
 * so errors keep their status; with the early answer on (`syncKeepaliveMs`), headers with the job id and
 * queue position go out at once, then an empty chunk at that interval while the job waits, and an error
 * arrives as the stream's final error object. Then each chunk as it lands: NDJSON lines as they are, SSE
 * events re-framed, or the one JSON body. A job that has not started within `syncWaitMs` is canceled and
 * its caller told why; a caller who goes away cancels the job.
 */
export async function answerFromRelay(
  deps: RelayResponseDeps,
  job: JobRecord,
  res: http.ServerResponse,
  /** The job's place in the queue when it was committed (for the early answer's header). */
  position?: number,
): Promise<void> {
  const { store, config } = deps;
  res.setHeader("X-Foreman-Job-Id", job.id);
  const controller = new AbortController();
  let settled = false;
  const cancel = () => {
    try {
      cancelJob({ store, dataDir: config.dataDir, wake: deps.wake, logger: deps.logger }, job.id);
    } catch (err) {
      deps.logger.warn("could not cancel the job of a departed caller", {
        job_id: job.id,
        error: (err as Error).message,
      });
    }
  };
  const callerLeft = () => {
    if (settled || controller.signal.aborted) return;
    controller.abort();
    cancel();
  };
  res.on("close", callerLeft);

  // The caller may have gone while the job was being committed, before the listener above existed.
  if (res.destroyed || res.closed) callerLeft();

  let framing: RelayFraming = "ndjson";
  let keepalive: NodeJS.Timeout | undefined;
  if (config.syncKeepaliveMs > 0 && !controller.signal.aborted) {
    framing = requestedFraming(job);
    res.writeHead(200, {
      "content-type": contentTypeFor(framing),
      ...(framing === "sse" ? { "cache-control": "no-cache" } : {}),
      ...(position !== undefined ? { "X-Foreman-Queue-Position": String(position) } : {}),
    });
    res.flushHeaders();
    keepalive = setInterval(() => {
      if (!res.writableEnded && !res.destroyed) res.write(emptyChunk(job, framing));
    }, config.syncKeepaliveMs);
  }
  let started = false;
  const waitLimit = setTimeout(() => {
    if (started || settled || controller.signal.aborted) return;
    const position = store.jobs.state(job.id) === "queued" ? queuePosition(store, config.starvationMs, job) : undefined;
    const { status, error } = waitLimitError(store, job, config.syncWaitMs, position);
    settled = true;
    controller.abort();
    cancel();
    deps.logger.warn("synchronous job did not start in time; canceled", { job_id: job.id, status, error });
    finish(res, framing, { state: "failed", status, error }, "");
  }, config.syncWaitMs);
  const stopWaiting = () => {
    clearTimeout(waitLimit);
    clearInterval(keepalive);
  };
  // A gateway shutting down after its grace period: the caller is told, and its job stops (nobody will read it).
  const untrack = deps.drain?.track(() => {
    if (settled || controller.signal.aborted) return;
    settled = true;
    controller.abort();
    cancel();
    finish(res, framing, { state: "failed", status: 503, error: "the gateway is shutting down; job canceled" }, "");
  });

  // A whole (non-streamed) answer is held until its job is done: a worker that dies after writing it but
  // before the job's end would otherwise have sent the caller a complete answer followed by an error
  // object. Held, a failure is answered with its own status (or, after an early answer's headers, with the
  // error object alone).
  let whole = "";
  let heldHead: { status: number; contentType: string } | undefined;
  try {
    const metrics = deps.metrics;
    for await (const batch of followJobRelay(config.dataDir, job.id, {
      pollMs: config.relayPollMs,
      signal: controller.signal,
      jobs: store.jobs,
      ...(metrics ? { onRead: (appendedAt: number) => metrics.relayLag((Date.now() - appendedAt) / 1000) } : {}),
    })) {
      let out = "";
      for (const item of batch) {
        if (item.kind === "start") {
          started = true;
          stopWaiting();
          // A whole answer not yet sent belongs to the attempt that wrote it: a new start replaces it.
          whole = "";
          // A requeued job starts again; a sync caller only ever sees its first start.
          if (res.headersSent) continue;
          const contentType = item.start.content_type;
          framing = relayFraming(contentType);
          // A whole answer is sent with its status once the job is done (see `whole` above).
          if (framing === "whole") heldHead = { status: item.start.status, contentType };
          else
            res.writeHead(item.start.status, {
              "content-type": contentType,
              ...(framing === "sse" ? { "cache-control": "no-cache" } : {}),
            });
        } else if (item.kind === "data") {
          if (framing === "whole") whole += item.line;
          else out += frameRelayData(framing, item.line);
        } else {
          settled = true;
          if (framing === "whole" && item.end.state === "done") {
            if (heldHead && !res.headersSent) res.writeHead(heldHead.status, { "content-type": heldHead.contentType });
            finish(res, framing, item.end, whole);
          } else finish(res, framing, item.end, out);
          return;
        }
      }
      if (out) res.write(out);
    }
  } finally {
    stopWaiting();
    untrack?.();
  }
  settled = true;
}

function finish(res: http.ServerResponse, framing: RelayFraming, end: RelayEnd, pending: string): void {
  if (res.writableEnded) return;
  if (!res.headersSent) {
    const status = end.status ?? (end.state === "canceled" ? 499 : end.state === "done" ? 200 : 500);
    const body = end.body ?? JSON.stringify({ error: end.error ?? `job ${end.state}` });
    res.writeHead(status, { "content-type": end.content_type ?? "application/json; charset=utf-8" });
    res.end(body);
    return;
  }
  res.end(pending + frameRelayEnd(framing, end));
}
