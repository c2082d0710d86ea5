import type http from "node:http";
import type { RelayFraming, RelayWriter } from "@foreman/shared";
import type { ResultCollector } from "./result-collector.js";

/**
 * How a chunk travels from the target to the relay: the target's answer is split into chunks by the
 * relay's framing (NDJSON lines; the payload of each SSE `data:` event on the OpenAI routes; the one body
 * of a `stream: false` answer), each chunk is parsed by the result collector first (a chunk that is not
 * JSON must fail the job, not reach the caller), then appended to the relay as it is, byte for byte.
 * Resolves when the target's answer ended; rejects when the connection broke or a chunk was bad.
 */
export function pumpToRelay(
  res: http.IncomingMessage,
  framing: RelayFraming,
  relay: RelayWriter,
  collector: ResultCollector,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = "";
    res.setEncoding("utf8");
    const line = (text: string) => {
      if (framing === "ndjson") {
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
      if (framing === "whole") return;
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
        if (framing === "whole") {
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

/** Reads a (small) error answer of the target, keeping at most `limit` characters. */
export function readErrorBody(res: http.IncomingMessage, limit = 1024 * 1024): Promise<string> {
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
export function targetErrorText(body: string, status: number): string {
  try {
    const parsed = JSON.parse(body) as { error?: string | { message?: string } };
    if (typeof parsed.error === "string") return parsed.error;
    if (parsed.error && typeof parsed.error.message === "string") return parsed.error.message;
  } catch {
    // Not JSON.
  }
  return body.trim() || `target answered ${status}`;
}
