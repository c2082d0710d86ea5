import type http from "node:http";
import {
  appendRelayEnd,
  type ForemanConfig,
  type JobRecord,
  LeaseLostError,
  type Logger,
  normalizeModelName,
  RelayWriter,
  relayTranscript,
  type Store,
  sameModel,
  writeArtifact,
} from "@foreman/shared";
import { ResultCollector } from "./result-collector.js";
import { ConnectError, type TargetClient } from "./target-client.js";

export type RunOutcome = "done" | "failed" | "canceled" | "requeued" | "unreachable";

type StopReason = "cancel" | "shutdown";

const TARGET_PATHS: Record<string, string> = {
  "ollama:chat": "/api/chat",
  "ollama:generate": "/api/generate",
  "openai:chat": "/v1/chat/completions",
  "openai:generate": "/v1/completions",
};

export interface JobRunnerDeps {
  store: Store;
  client: TargetClient;
  logger: Logger;
  config: Pick<ForemanConfig, "dataDir" | "embedModel" | "inlineResultMaxBytes">;
  /** This worker's lease id: every transition it records is checked against the lease (ADR 0004). */
  workerId: string;
  /** Counts model loads and swaps for the status route and metrics. */
  onModelSwitch?: (from: string | null, to: string) => void;
}

/**
 * Runs one claimed job against the target: switches the worker model when needed (unloading the previous
 * one first so the embedder is never the one evicted, SPEC §2.1), streams the answer into the job's relay
 * chunk by chunk, and records the outcome through the state machine. Owns the distinction between "the
 * target was never reached" (requeue, attempt refunded), "the target refused" (fail with its status and
 * body) and "the answer broke off" (requeue an async job, fail a sync one with a final error line).
 */
export function createJobRunner(deps: JobRunnerDeps) {
  const { store, client, logger, workerId } = deps;
  let resident: string | null = null;
  let current: {
    job: JobRecord;
    controller: AbortController;
    reason: StopReason | null;
    done: Promise<RunOutcome>;
    /** Releases the target response and the relay if the run ends in an unexpected error. */
    cleanup?: () => void;
  } | null = null;

  /** After a start or an interruption the worker does not know what the target holds: ask /api/ps. */
  async function discoverResident(): Promise<string | null> {
    try {
      const ps = await client.ps();
      const workerModel = ps.models.find((m) => !sameModel(m.name, deps.config.embedModel));
      return workerModel ? normalizeModelName(workerModel.name) : null;
    } catch {
      return null;
    }
  }

  async function switchModel(model: string): Promise<void> {
    if (resident === null) resident = await discoverResident();
    if (resident === model) return;
    const previous = resident;
    // Don't give up the loaded model for one the target does not have: the job will fail with the
    // target's own 404, and the next job for the resident model should not pay a reload.
    if (previous !== null && !(await client.hasModel(model))) return;
    if (previous !== null && !sameModel(previous, deps.config.embedModel)) {
      try {
        await client.unload(previous);
        logger.info("model unloaded", { model: previous, next_model: model });
      } catch (err) {
        logger.warn("model unload failed", { model: previous, error: (err as Error).message });
      }
    }
    deps.onModelSwitch?.(previous, model);
    resident = null;
  }

  async function execute(job: JobRecord, controller: AbortController): Promise<RunOutcome> {
    await switchModel(job.model);
    const path = TARGET_PATHS[`${job.api}:${job.kind}`]!;
    const body = JSON.stringify(job.request);
    let res: http.IncomingMessage;
    try {
      res = await client.openStream(path, body, controller.signal).catch((err: unknown) => {
        // A pooled connection the target closed while idle: the request never arrived, try once more.
        if (err instanceof ConnectError && err.reusedSocket && !controller.signal.aborted) {
          return client.openStream(path, body, controller.signal);
        }
        throw err;
      });
    } catch (err) {
      if (controller.signal.aborted) return stopped(job, null, current?.reason ?? "cancel", false);
      const reason = `target unreachable: ${(err as Error).message}`;
      const moved = store.transitions.requeue(job.id, { refundAttempt: true, reason, workerId });
      if (moved.state === "canceled") {
        appendRelayEnd(deps.config.dataDir, job.id, { state: "canceled", status: 499, error: "job canceled" });
        return "canceled";
      }
      return "unreachable";
    }

    const status = res.statusCode ?? 502;
    const contentType = String(res.headers["content-type"] ?? "application/json; charset=utf-8");
    if (status !== 200) {
      const text = await readBody(res).catch(() => "");
      const error = errorText(text, status);
      store.transitions.transition(job.id, "failed", {
        workerId,
        error,
        errorStatus: status,
        reason: "target refused the request",
      });
      appendRelayEnd(deps.config.dataDir, job.id, {
        state: "failed",
        status,
        error,
        body: text,
        content_type: contentType,
      });
      return "failed";
    }

    resident = job.model;
    const relay = RelayWriter.open(deps.config.dataDir, job.id);
    if (current) {
      current.cleanup = () => {
        res.destroy();
        relay.close();
      };
    }
    store.transitions.transition(job.id, "working", { workerId });
    relay.start({ attempt: job.attempts, status, content_type: contentType });
    const collector = new ResultCollector(job.kind, job.api);
    try {
      await pump(res, contentType, relay, collector);
    } catch (err) {
      if (controller.signal.aborted) return stopped(job, relay, current?.reason ?? "cancel", true);
      return interrupted(job, relay, `target connection lost mid-generation: ${(err as Error).message}`);
    }
    if (!collector.done) return interrupted(job, relay, "target ended the stream before its final chunk");
    const result = collector.result();
    const inline = storeArtifacts(job, result);
    store.transitions.transition(job.id, "done", {
      workerId,
      result: inline ? result : null,
      metrics: collector.metrics(),
    });
    relay.end({ state: "done" });
    return "done";
  }

  /**
   * Stores the result and the relay transcript as artifacts (before the terminal transition, so its webhook
   * can point at them) and says whether the result is small enough to inline.
   */
  function storeArtifacts(job: JobRecord, result: unknown): boolean {
    const dataDir = deps.config.dataDir;
    const resultJson = JSON.stringify(result);
    try {
      store.artifacts.record(writeArtifact(dataDir, job.id, "result.json", "application/json", resultJson));
      const transcript = relayTranscript(dataDir, job.id);
      if (transcript) {
        store.artifacts.record(writeArtifact(dataDir, job.id, "transcript.ndjson", "application/x-ndjson", transcript));
      }
    } catch (err) {
      // The job itself succeeded; losing its files (disk full) must not fail it. The result stays inline.
      logger.error("could not store artifacts", { job_id: job.id, error: (err as Error).message });
      return true;
    }
    return Buffer.byteLength(resultJson) <= deps.config.inlineResultMaxBytes;
  }

  /**
   * An error no path above expected (the database refused a write, the disk is full): release the target's
   * response and the relay, and end the job so no caller waits on it forever; then let the loop go on.
   */
  function failUnexpectedly(job: JobRecord, err: unknown, cleanup: (() => void) | undefined): RunOutcome {
    if (err instanceof LeaseLostError) {
      // Another worker owns the job now: stop touching it, and let it be.
      logger.warn("lost the worker lease mid-job; leaving the job to the active worker", { job_id: job.id });
      try {
        cleanup?.();
      } catch {
        // Already released.
      }
      resident = null;
      return "requeued";
    }
    const message = (err as Error)?.message ?? String(err);
    logger.error("job run failed unexpectedly", { job_id: job.id, error: (err as Error)?.stack ?? message });
    try {
      cleanup?.();
    } catch {
      // Already released.
    }
    resident = null;
    try {
      const now = store.jobs.get(job.id);
      if (now && (now.state === "loading" || now.state === "working")) {
        const error = `worker error: ${message}`;
        store.transitions.transition(job.id, "failed", { workerId, error, errorStatus: 500, reason: error });
        appendRelayEnd(deps.config.dataDir, job.id, { state: "failed", status: 500, error });
      }
    } catch (inner) {
      // Still non-terminal: the next worker start recovers it.
      logger.error("could not fail the job after an unexpected error", { job_id: job.id, error: String(inner) });
    }
    return "failed";
  }

  /** The job was stopped by us: a cancel, or a shutdown that hands it back. */
  function stopped(job: JobRecord, relay: RelayWriter | null, reason: StopReason, started: boolean): RunOutcome {
    const end = (e: Parameters<RelayWriter["end"]>[0]) =>
      relay ? relay.end(e) : appendRelayEnd(deps.config.dataDir, job.id, e);
    if (reason === "cancel") {
      store.transitions.transition(job.id, "canceled", { workerId, reason: "canceled while running" });
      end({ state: "canceled", status: 499, error: "job canceled" });
      return "canceled";
    }
    // Shutdown: a job that has not streamed anything, or an async one, goes back to the queue with its
    // attempt refunded; a sync caller that already has chunks cannot be resumed by another worker.
    if (!started || job.mode === "async") {
      relay?.close();
      const moved = store.transitions.requeue(job.id, {
        refundAttempt: true,
        reason: "worker shutting down",
        workerId,
      });
      if (moved.state === "canceled") end({ state: "canceled", status: 499, error: "job canceled" });
      return moved.state === "canceled" ? "canceled" : "requeued";
    }
    const error = "worker shut down mid-generation";
    store.transitions.transition(job.id, "failed", { workerId, error, errorStatus: 503, reason: error });
    end({ state: "failed", status: 503, error });
    return "failed";
  }

  function interrupted(job: JobRecord, relay: RelayWriter, error: string): RunOutcome {
    resident = null;
    if (job.mode === "async" && job.attempts < job.maxAttempts) {
      const moved = store.transitions.requeue(job.id, { reason: error, workerId });
      if (moved.state === "canceled") {
        relay.end({ state: "canceled", status: 499, error: "job canceled" });
        return "canceled";
      }
      relay.close();
      return "requeued";
    }
    store.transitions.transition(job.id, "failed", { workerId, error, errorStatus: 502, reason: error });
    relay.end({ state: "failed", status: 502, error });
    return "failed";
  }

  return {
    residentModel: () => resident,
    currentJobId: () => current?.job.id ?? null,
    run(job: JobRecord): Promise<RunOutcome> {
      const controller = new AbortController();
      const entry: NonNullable<typeof current> = { job, controller, reason: null, done: Promise.resolve("done") };
      current = entry;
      entry.done = execute(job, controller)
        .catch((err: unknown) => failUnexpectedly(job, err, entry.cleanup))
        .finally(() => {
          if (current === entry) current = null;
        });
      return entry.done;
    },
    /** Aborts the current job if a caller asked to cancel it; cheap enough to call on every wake-up. */
    checkCancel(): void {
      if (!current || current.reason) return;
      if (store.jobs.get(current.job.id)?.cancelRequestedAt) {
        current.reason = "cancel";
        current.controller.abort();
      }
    },
    /** Stops the current job for shutdown and resolves when it has been handed back. */
    async abortForShutdown(): Promise<void> {
      if (!current) return;
      current.reason ??= "shutdown";
      current.controller.abort();
      await current.done.catch(() => undefined);
    },
    /** Resolves when the current job (if any) has finished. */
    async idle(): Promise<void> {
      await current?.done.catch(() => undefined);
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;

/**
 * Copies the target's answer into the relay as it arrives. NDJSON lines and SSE `data:` payloads are
 * appended as they are; a plain JSON answer (`stream: false`) becomes one line.
 */
function pump(
  res: http.IncomingMessage,
  contentType: string,
  relay: RelayWriter,
  collector: ResultCollector,
): Promise<void> {
  const mode = contentType.includes("ndjson") ? "ndjson" : contentType.includes("event-stream") ? "sse" : "whole";
  return new Promise((resolve, reject) => {
    let pending = "";
    res.setEncoding("utf8");
    const line = (text: string) => {
      // Parsed before it is relayed: a line that is not JSON must fail the job, not reach the caller.
      if (mode === "ndjson") {
        if (text.length === 0) return;
        collector.addChunk(text);
        relay.data(text);
        return;
      }
      // SSE: only `data:` fields carry payloads; the terminal `[DONE]` is re-created by the gateway.
      if (!text.startsWith("data:")) return;
      const payload = text.slice(text[5] === " " ? 6 : 5);
      if (payload === "[DONE]") return collector.markDone();
      collector.addChunk(payload);
      relay.data(payload);
    };
    res.on("data", (chunk: string) => {
      pending += chunk;
      if (mode === "whole") return;
      try {
        let nl = pending.indexOf("\n");
        let start = 0;
        while (nl >= 0) {
          line(pending.slice(start, nl).replace(/\r$/, ""));
          start = nl + 1;
          nl = pending.indexOf("\n", start);
        }
        pending = pending.slice(start);
      } catch (err) {
        // A chunk that is not JSON, or a relay write that failed (disk full): thrown here it would escape
        // the HTTP parser and end the process; as a rejection it takes the job's interruption path.
        res.destroy(err as Error);
      }
    });
    res.on("end", () => {
      try {
        if (mode === "whole") {
          const body = pending.trimEnd();
          relay.data(body);
          collector.addWhole(body);
        } else if (pending.length > 0) {
          line(pending);
        }
        resolve();
      } catch (err) {
        reject(err);
      }
    });
    res.on("error", reject);
    res.on("close", () => {
      if (!res.complete) reject(new Error("connection closed before the answer was complete"));
    });
  });
}

function readBody(res: http.IncomingMessage, limit = 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (d: string) => {
      if (text.length < limit) text += d;
    });
    res.on("end", () => resolve(text));
    res.on("error", reject);
  });
}

/** Ollama's `{"error": "…"}`, OpenAI's `{"error": {"message": "…"}}`, or the raw text. */
function errorText(body: string, status: number): string {
  try {
    const parsed = JSON.parse(body) as { error?: string | { message?: string } };
    if (typeof parsed.error === "string") return parsed.error;
    if (parsed.error && typeof parsed.error.message === "string") return parsed.error.message;
  } catch {
    // Not JSON.
  }
  return body.trim() || `target answered ${status}`;
}
