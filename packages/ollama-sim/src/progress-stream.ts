import { pauseUnlessClosed } from "./completion-stream.js";
import { goJson } from "./go-json.js";
import { JSON_TYPE, NDJSON_TYPE, sendBody } from "./http-io.js";
import type { RequestScope } from "./route-context.js";

/** One line of a pull, push or create stream: progress, or the error that ends it. */
export type ProgressItem =
  | { status: string; digest?: string; total?: number; completed?: number }
  | { error: string; httpStatus?: number };

export interface ProgressOptions {
  stream: boolean;
  /** Time spread evenly over the lines. */
  totalMs: number;
  /** Cut the connection after this many lines (the die-mid-stream fault). */
  dieAfterChunks: number | undefined;
  /** Runs once the last line is out (a pull adds its model to the library here). */
  onSuccess?: () => void;
}

function progressJson(item: { status: string; digest?: string; total?: number; completed?: number }): string {
  // ProgressResponse fields are omitempty: a zero `completed` is absent from the line.
  const out: Record<string, unknown> = { status: item.status };
  if (item.digest) out.digest = item.digest;
  if (item.total) out.total = item.total;
  if (item.completed) out.completed = item.completed;
  return goJson(out);
}

/**
 * Plays progress lines as routes.go streamResponse does (NDJSON; an error before the first line
 * becomes a JSON error response with its status, after it an {"error"} line), or, for
 * `stream: false`, as waitForStream does (only the last progress object, or the error).
 */
export async function playProgress(
  scope: RequestScope,
  items: ProgressItem[],
  options: ProgressOptions,
): Promise<void> {
  const { res, call } = scope;
  const delay = items.length > 0 ? options.totalMs / items.length : 0;
  let last: { status: string; digest?: string; total?: number; completed?: number } | undefined;
  let written = 0;
  for (const item of items) {
    await pauseUnlessClosed(delay, call);
    if (call.closed) return;
    if ("error" in item) {
      if (!options.stream || written === 0) {
        return sendBody(res, item.httpStatus ?? 500, JSON_TYPE, goJson({ error: item.error }));
      }
      res.end(`${goJson({ error: item.error })}\n`);
      return;
    }
    last = item;
    if (!options.stream) continue;
    if (written === 0) res.writeHead(200, { "Content-Type": NDJSON_TYPE });
    const line = `${progressJson(item)}\n`;
    written++;
    if (options.dieAfterChunks !== undefined && written > options.dieAfterChunks) {
      call.killedByServer = true;
      res.socket?.destroy();
      return;
    }
    res.write(line);
  }
  options.onSuccess?.();
  if (!options.stream) {
    return sendBody(res, 200, "application/json", last ? progressJson(last) : "{}");
  }
  res.end();
}
