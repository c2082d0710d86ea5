import type http from "node:http";
import type { RelayFraming, RelayWriter } from "@foreman/shared";
import type { ResultCollector } from "./result-collector.js";

/**
 * How a chunk travels from the target to the relay: the target's answer is split into chunks by the
 * relay's framing (NDJSON lines; the payload of each SSE `data:` event on the OpenAI routes; the one body
 * of a `stream: false` answer), each chunk is parsed by the result collector first (a chunk that is not
 * JSON must fail the job, not reach the caller), then appended to the relay as it is, byte for byte.
 * Resolves when the target's answer ended, with the whitespace a whole answer ended with (the relay line
 * cannot hold it; the gateway sends it after the body); rejects when the connection broke or a chunk was bad.
 */
export function pumpToRelay(
  res: http.IncomingMessage,
  framing: RelayFraming,
  relay: Pick<RelayWriter, "data">,
  collector: ResultCollector,
  maxLineChars = 64 * 1024 * 1024,
): Promise<string> {
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
    const tooLong = () =>
      new Error(
        `the target sent ${framing === "whole" ? "an answer" : "a line"} longer than ${maxLineChars} characters`,
      );
    res.on("data", (chunk: string) => {
      try {
        // Only the new text is searched for line ends, so a long line costs linear time, and it is capped:
        // a target that never sends a newline cannot grow this buffer (or starve the worker) without end.
        let nl = chunk.indexOf("\n");
        if (nl < 0) {
          pending += chunk;
          if (pending.length > maxLineChars) throw tooLong();
          return;
        }
        if (framing === "whole") {
          pending += chunk;
          if (pending.length > maxLineChars) throw tooLong();
          return;
        }
        let start = 0;
        let head = pending;
        while (nl >= 0) {
          const text = head + chunk.slice(start, nl);
          head = "";
          if (text.length > maxLineChars) throw tooLong();
          line(text.endsWith("\r") ? text.slice(0, -1) : text);
          start = nl + 1;
          nl = chunk.indexOf("\n", start);
        }
        pending = chunk.slice(start);
        if (pending.length > maxLineChars) throw tooLong();
      } catch (err) {
        // A chunk that is not JSON, a line past the cap, or a relay write that failed (disk full): thrown here
        // it would escape the HTTP parser and end the process; as a rejection it takes the interruption path.
        res.destroy(err as Error);
      }
    });
    res.on("end", () => {
      try {
        if (framing === "whole") {
          const body = pending.trimEnd();
          collector.addWhole(body);
          relay.data(body);
          return resolve(pending.slice(body.length));
        }
        if (pending.length > 0) line(pending);
        resolve("");
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

/** An error answer's body is kept up to this: enough for any real error, and it is copied into the relay. */
const ERROR_BODY_MAX_CHARS = 64 * 1024;
/** The error text recorded on the job (and so in logs, the job view and its webhooks) is cut at this. */
const ERROR_TEXT_MAX_CHARS = 2048;

/** Reads a target's error answer, keeping at most 64 KiB of it (the rest is read and dropped). */
export function readErrorBody(res: http.IncomingMessage, limit = ERROR_BODY_MAX_CHARS): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (d: string) => {
      if (text.length < limit) text += d.slice(0, limit - text.length);
    });
    res.on("end", () => resolve(text));
    res.on("error", reject);
  });
}

/** Ollama's `{"error": "…"}`, OpenAI's `{"error": {"message": "…"}}`, or the raw text; at most 2 KiB. */
export function targetErrorText(body: string, status: number): string {
  let text = body.trim() || `target answered ${status}`;
  try {
    const parsed = JSON.parse(body) as { error?: string | { message?: string } };
    if (typeof parsed.error === "string") text = parsed.error;
    else if (parsed.error && typeof parsed.error.message === "string") text = parsed.error.message;
  } catch {
    // Not JSON: the raw text.
  }
  return text.length > ERROR_TEXT_MAX_CHARS ? `${text.slice(0, ERROR_TEXT_MAX_CHARS)}… (truncated)` : text;
}

/** The content types an Ollama answer comes in; anything else (an HTML page from a proxy) is not one. */
export function isOllamaAnswer(contentType: string): boolean {
  return /application\/(x-ndjson|json)|text\/event-stream/i.test(contentType);
}
