import type http from "node:http";
import {
  type ForemanConfig,
  followRelay,
  isTerminal,
  type JobRecord,
  type Logger,
  type RelayEnd,
  relayPath,
  type Store,
} from "@foreman/shared";

import { cancelJob } from "./jobs/cancel.js";

export interface RelayResponseDeps {
  config: Pick<ForemanConfig, "dataDir" | "relayPollMs">;
  store: Store;
  logger: Logger;
  wake: () => void;
}

type Framing = "ndjson" | "sse" | "whole";

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

  const endedInDatabase = (): RelayEnd | null => {
    const current = store.jobs.get(job.id);
    if (!current || !isTerminal(current.state)) return null;
    return {
      state: current.state as RelayEnd["state"],
      ...(current.errorStatus !== null ? { status: current.errorStatus } : {}),
      ...(current.error !== null ? { error: current.error } : {}),
    };
  };

  let framing: Framing = "ndjson";
  for await (const batch of followRelay(relayPath(deps.config.dataDir, job.id), {
    pollMs: deps.config.relayPollMs,
    signal: controller.signal,
    isEnded: endedInDatabase,
  })) {
    let out = "";
    for (const item of batch) {
      if (item.kind === "start") {
        // A requeued job starts again; a sync caller only ever sees its first start.
        if (res.headersSent) continue;
        const contentType = item.start.content_type;
        framing = contentType.includes("event-stream") ? "sse" : contentType.includes("ndjson") ? "ndjson" : "whole";
        res.writeHead(item.start.status, {
          "content-type": contentType,
          ...(framing === "sse" ? { "cache-control": "no-cache" } : {}),
        });
      } else if (item.kind === "data") {
        out += framing === "sse" ? `data: ${item.line}\n\n` : framing === "ndjson" ? `${item.line}\n` : item.line;
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

function finish(res: http.ServerResponse, framing: Framing, end: RelayEnd, pending: string): void {
  if (!res.headersSent) {
    const status = end.status ?? (end.state === "canceled" ? 499 : end.state === "done" ? 200 : 500);
    const body = end.body ?? JSON.stringify({ error: end.error ?? `job ${end.state}` });
    res.writeHead(status, { "content-type": end.content_type ?? "application/json; charset=utf-8" });
    res.end(body);
    return;
  }
  let tail = pending;
  if (end.state === "done") {
    if (framing === "sse") tail += "data: [DONE]\n\n";
  } else {
    // Headers are gone, so the status cannot change: the stream ends with an error object, as Ollama does
    // when generation fails mid-stream.
    const error = end.error ?? `job ${end.state}`;
    if (framing === "ndjson") tail += `${JSON.stringify({ error })}\n`;
    else if (framing === "sse") tail += `data: ${JSON.stringify({ error: { message: error, type: "api_error" } })}\n\n`;
  }
  res.end(tail);
}
