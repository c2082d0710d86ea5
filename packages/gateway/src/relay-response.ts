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

export interface RelayResponseDeps {
  config: Pick<ForemanConfig, "dataDir" | "relayPollMs">;
  store: Store;
  logger: Logger;
  wake: () => void;
}

/**
 * Answers a synchronous caller from its job's relay, exactly as the target answered the worker: no header
 * is sent before the worker's first event (the target's status and content type, or its error), then each
 * chunk as it lands: NDJSON lines as they are, SSE events re-framed, or the one JSON body. A caller who goes
 * away cancels the job (SPEC §5.1).
 */
export async function answerFromRelay(
  deps: RelayResponseDeps,
  job: JobRecord,
  res: http.ServerResponse,
): Promise<void> {
  const { store } = deps;
  res.setHeader("X-Foreman-Job-Id", job.id);
  const controller = new AbortController();
  let settled = false;
  const callerLeft = () => {
    if (settled || controller.signal.aborted) return;
    controller.abort();
    try {
      cancelJob({ store, dataDir: deps.config.dataDir, wake: deps.wake, logger: deps.logger }, job.id);
    } catch (err) {
      deps.logger.warn("could not cancel the job of a departed caller", {
        job_id: job.id,
        error: (err as Error).message,
      });
    }
  };
  res.on("close", callerLeft);

  // The caller may have gone while the job was being committed, before the listener above existed.
  if (res.destroyed || res.closed) callerLeft();

  let framing: RelayFraming = "ndjson";
  for await (const batch of followJobRelay(deps.config.dataDir, job.id, {
    pollMs: deps.config.relayPollMs,
    signal: controller.signal,
    jobs: store.jobs,
  })) {
    let out = "";
    for (const item of batch) {
      if (item.kind === "start") {
        // A requeued job starts again; a sync caller only ever sees its first start.
        if (res.headersSent) continue;
        const contentType = item.start.content_type;
        framing = relayFraming(contentType);
        res.writeHead(item.start.status, {
          "content-type": contentType,
          ...(framing === "sse" ? { "cache-control": "no-cache" } : {}),
        });
      } else if (item.kind === "data") {
        out += frameRelayData(framing, item.line);
      } else {
        settled = true;
        finish(res, framing, item.end, out);
        return;
      }
    }
    if (out) res.write(out);
  }
  settled = true;
}

function finish(res: http.ServerResponse, framing: RelayFraming, end: RelayEnd, pending: string): void {
  if (!res.headersSent) {
    const status = end.status ?? (end.state === "canceled" ? 499 : end.state === "done" ? 200 : 500);
    const body = end.body ?? JSON.stringify({ error: end.error ?? `job ${end.state}` });
    res.writeHead(status, { "content-type": end.content_type ?? "application/json; charset=utf-8" });
    res.end(body);
    return;
  }
  res.end(pending + frameRelayEnd(framing, end));
}
