import { ForemanProtocolError } from "./errors.js";

/**
 * Parses an `application/x-ndjson` body into one value per line, however the network cuts it: a line
 * may arrive in many pieces, many lines in one piece, and a piece may end inside a multi-byte UTF-8
 * character (the streaming `TextDecoder` holds those bytes back until the rest arrives). Blank lines are
 * skipped, a trailing `\r` is ignored and a last line without its newline still counts.
 *
 * Leaving the loop early (break, throw, return) cancels the body, so the connection is released instead
 * of the rest of the stream being read into the void.
 */
export async function* parseNdjson(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  let pending = "";
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Only the new text can hold a newline the previous pieces did not: scanning from there keeps a
      // long line that arrives in many small pieces linear instead of quadratic.
      let scanFrom = pending.length;
      pending += decoder.decode(value, { stream: true });
      let lineStart = 0;
      for (let newline = pending.indexOf("\n", scanFrom); newline !== -1; newline = pending.indexOf("\n", scanFrom)) {
        const line = pending.slice(lineStart, newline);
        lineStart = scanFrom = newline + 1;
        if (!isBlank(line)) yield parseLine(line);
      }
      if (lineStart > 0) pending = pending.slice(lineStart);
    }
    finished = true;
    pending += decoder.decode();
    if (!isBlank(pending)) yield parseLine(pending);
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function isBlank(line: string): boolean {
  return line.trim() === "";
}

function parseLine(line: string): unknown {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  try {
    return JSON.parse(text);
  } catch {
    const excerpt = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new ForemanProtocolError(`invalid JSON line in NDJSON stream: ${excerpt}`);
  }
}
