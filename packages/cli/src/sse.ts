/** One dispatched server-sent event. */
export interface SseMessage {
  /** This event's own `id:` field, when it had one. */
  id: string | undefined;
  /** The last `id:` seen, this event's or an earlier one's, as EventSource keeps it. */
  lastEventId: string | undefined;
  /** `message` when the event named none. */
  event: string;
  data: string;
}

export interface SseOptions {
  /** A `retry:` field: the server's reconnection delay in ms. */
  onRetry?: (ms: number) => void;
  /** Every piece that arrives, keep-alive comments included: the connection is alive. */
  onActivity?: () => void;
  /** The id to start from (a resumed stream keeps the one it had). */
  lastEventId?: string | undefined;
}

/**
 * Parses a `text/event-stream` body as the HTML standard's EventSource does: lines end with LF, CR or CRLF;
 * `data:` lines join with "\n"; one leading space after the colon is dropped; comments (`: keep-alive`)
 * and unknown fields are ignored; a blank line dispatches, and an event with no data is not dispatched.
 */
export async function* parseSse(
  body: ReadableStream<Uint8Array>,
  options: SseOptions = {},
): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  let pending = "";
  let lastEventId = options.lastEventId;
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  let finished = false;
  // A CR at the very end of a piece may be the first half of a CRLF split across pieces.
  let skipLeadingLf = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      options.onActivity?.();
      pending += decoder.decode(value, { stream: true });
      if (skipLeadingLf && pending.startsWith("\n")) pending = pending.slice(1);
      skipLeadingLf = false;
      for (;;) {
        const end = pending.search(/[\r\n]/);
        if (end < 0) break;
        if (pending[end] === "\r" && end === pending.length - 1) {
          skipLeadingLf = true;
        }
        const line = pending.slice(0, end);
        const skip = pending[end] === "\r" && pending[end + 1] === "\n" ? 2 : 1;
        pending = pending.slice(end + skip);
        if (line === "") {
          if (data.length > 0) yield { id, lastEventId, event: event || "message", data: data.join("\n") };
          id = undefined;
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "event") event = text;
        else if (field === "id" && !text.includes("\0")) id = lastEventId = text;
        else if (field === "retry" && /^\d+$/.test(text)) options.onRetry?.(Number(text));
      }
    }
    finished = true;
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
