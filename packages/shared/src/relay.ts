import fs from "node:fs";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";

/**
 * The per-job relay: an append-only NDJSON file under `FOREMAN_DATA_DIR/relays/` that the worker writes as
 * the target streams and any gateway follows. Data lines are the target's chunks, byte for byte
 * (one JSON object each; for the OpenAI routes the payload of each SSE `data:` event). Control lines start
 * with `#`, which no JSON chunk can, so a reader tells them apart by the first byte without parsing:
 *
 *   #start {"attempt":1,"status":200,"content_type":"application/x-ndjson"}   the target answered
 *   #end {"state":"done"}                                                       the job ended
 *   #end {"state":"failed","status":404,"error":"…","body":"…"}                 …with what to tell the caller
 *
 * A requeued async job appends a new `#start`; readers that replay show the last attempt.
 */
export interface RelayStart {
  attempt: number;
  status: number;
  content_type: string;
}

export interface RelayEnd {
  state: "done" | "failed" | "canceled";
  /** HTTP status for a caller that has not received headers yet. */
  status?: number;
  /** Human-readable error (Ollama's `error` text when the target gave one). */
  error?: string;
  /** The target's own error body, to answer a caller byte for byte. */
  body?: string;
  content_type?: string;
  /**
   * The whitespace a whole (non-streamed) answer ended with, which its one data line cannot hold: Ollama's
   * OpenAI-compatible routes end their JSON with a newline (Go's json.Encoder), its native routes do not.
   */
  tail?: string;
}

export type RelayLine =
  | { kind: "start"; start: RelayStart }
  | { kind: "end"; end: RelayEnd }
  | { kind: "data"; line: string };

export function relayDir(dataDir: string): string {
  return path.join(dataDir, "relays");
}

export function relayPath(dataDir: string, jobId: string): string {
  return path.join(relayDir(dataDir), `${jobId}.ndjson`);
}

export function parseRelayLine(line: string): RelayLine {
  if (line.startsWith("#start ")) return { kind: "start", start: JSON.parse(line.slice(7)) as RelayStart };
  if (line.startsWith("#end ")) return { kind: "end", end: JSON.parse(line.slice(5)) as RelayEnd };
  return { kind: "data", line };
}

/**
 * The one place a relay file is created: its folder made, the file opened for appending (created when
 * missing, never truncated). Every writer and the followers' "make it exist" go through here.
 */
function openRelayForAppend(dataDir: string, jobId: string): { file: string; fd: number } {
  const file = relayPath(dataDir, jobId);
  try {
    return { file, fd: fs.openSync(file, "a") };
  } catch (err) {
    // The folder is made once, by the first relay; each later open is one system call on the job's path.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return { file, fd: fs.openSync(file, "a") };
  }
}

/** Creates the relay file if it does not exist yet, so followers can watch it before the worker writes. */
export function ensureRelay(dataDir: string, jobId: string): string {
  const { file, fd } = openRelayForAppend(dataDir, jobId);
  fs.closeSync(fd);
  return file;
}

/**
 * Appends control and data lines. One `write(2)` per line keeps lines whole for concurrent readers.
 *
 * The `#start` line waits for the first data line (or the end of this event-loop turn, or the end of the
 * relay) and goes out in the same write: a target sends its first chunk with its headers, and one write
 * wakes a follower once, where two made it wake, read and parse a start with nothing yet to send, then
 * wake again for the chunk, on the way to the caller's first token.
 */
export class RelayWriter {
  private heldStart: string | null = null;

  private constructor(
    readonly file: string,
    private fd: number | null,
  ) {}

  static open(dataDir: string, jobId: string): RelayWriter {
    const { file, fd } = openRelayForAppend(dataDir, jobId);
    return new RelayWriter(file, fd);
  }

  start(start: RelayStart): void {
    this.heldStart = `#start ${JSON.stringify(start)}\n`;
    setImmediate(() => {
      try {
        if (this.heldStart !== null && this.fd !== null) this.write("");
      } catch {
        // Still held: the next line, the end or close writes it, where a failure is handled.
      }
    });
  }

  /** `line` is one chunk without its trailing newline. */
  data(line: string): void {
    this.write(`${line}\n`);
  }

  end(end: RelayEnd): void {
    try {
      this.write(`#end ${JSON.stringify(end)}\n`);
    } finally {
      this.close();
    }
  }

  close(): void {
    try {
      if (this.heldStart !== null && this.fd !== null) this.write("");
    } catch {
      // A relay that cannot be written (disk full) is closed all the same; the job's state is in the database.
    } finally {
      this.heldStart = null;
      if (this.fd !== null) fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  private write(text: string): void {
    if (this.fd === null) throw new Error(`relay ${this.file} is closed`);
    fs.writeSync(this.fd, this.heldStart === null ? text : this.heldStart + text);
    this.heldStart = null;
  }
}

/** Appends an end line for a job no worker is writing to (canceled while queued, or ended by recovery). */
export function appendRelayEnd(dataDir: string, jobId: string, end: RelayEnd): void {
  RelayWriter.open(dataDir, jobId).end(end);
}

/**
 * How a relay's data lines are framed for a caller, decided once from the content type the target
 * answered with: NDJSON lines as they are, SSE `data:` events (the OpenAI-compatible routes), or the one
 * JSON body of a `stream: false` answer. The worker reads the target's answer by the same rule.
 */
export type RelayFraming = "ndjson" | "sse" | "whole";

export function relayFraming(contentType: string): RelayFraming {
  if (contentType.includes("ndjson")) return "ndjson";
  if (contentType.includes("event-stream")) return "sse";
  return "whole";
}

/** One data line as the caller receives it. */
export function frameRelayData(framing: RelayFraming, line: string): string {
  if (framing === "sse") return `data: ${line}\n\n`;
  if (framing === "ndjson") return `${line}\n`;
  return line;
}

/**
 * What closes a stream whose headers are already sent: SSE's `[DONE]` after success; after a failure the
 * status cannot change any more, so the stream ends with an error object, as Ollama does when generation
 * fails mid-stream (OpenAI's error shape for SSE). A whole answer is written in one piece when it is
 * complete, so a failed one has sent no body yet (only an early answer's whitespace): the error object is it.
 */
export function frameRelayEnd(framing: RelayFraming, end: RelayEnd): string {
  if (end.state === "done") return framing === "sse" ? "data: [DONE]\n\n" : framing === "whole" ? (end.tail ?? "") : "";
  const error = end.error ?? `job ${end.state}`;
  if (framing === "sse") return `data: ${JSON.stringify({ error: { message: error, type: "api_error" } })}\n\n`;
  return `${JSON.stringify({ error })}\n`;
}

/** The data lines of a job's last attempt (everything after the last `#start`): the transcript artifact. */
export function relayTranscript(dataDir: string, jobId: string): string {
  let text: Buffer;
  try {
    text = fs.readFileSync(relayPath(dataDir, jobId));
  } catch {
    return "";
  }
  return text
    .subarray(lastAttemptOffsetIn(text))
    .toString("utf8")
    .split("\n")
    .filter((line) => line.length > 0 && !line.startsWith("#"))
    .map((line) => `${line}\n`)
    .join("");
}

/** The database's word on a job's end, for a relay whose writer died before its `#end` line. */
export interface JobEndings {
  /** The end of a job that has reached a terminal state, or null while it has not (or does not exist). */
  ending(jobId: string): RelayEnd | null;
}

export interface FollowOptions {
  /** Bounded fallback: re-read at least this often even if no file-system event arrives (ms). */
  pollMs: number;
  signal?: AbortSignal;
  /** Consulted on each fallback poll: a job that ended without an `#end` line (a crash) ends the follow. */
  jobs?: JobEndings;
  /** Start at the last `#start` already written (a requeued job's earlier attempts are skipped). */
  fromLastAttempt?: boolean;
  /** Told the file's last-modified time (ms) at each read that found new lines: the relay lag's start. */
  onRead?: (appendedAtMs: number) => void;
}

/**
 * Follows a job's relay from its first byte until the job ends: yields the lines appended since the last
 * read, in batches, waking on a file-system watch (inotify on Linux) with a bounded fallback poll, and
 * returns after the `#end` line, or after the database says the job ended when no `#end` line will come.
 */
export async function* followJobRelay(
  dataDir: string,
  jobId: string,
  options: FollowOptions,
): AsyncGenerator<RelayLine[]> {
  const file = relayPath(dataDir, jobId);
  const isEnded = options.jobs ? () => options.jobs!.ending(jobId) : null;
  if (!(await waitForFile(dataDir, jobId, options.pollMs, options.signal, isEnded))) return;
  let wake: (() => void) | null = null;
  let dirty = true;
  const watcher = fs.watch(file, () => {
    dirty = true;
    wake?.();
  });
  watcher.on("error", () => undefined);
  const onAbort = () => wake?.();
  options.signal?.addEventListener("abort", onAbort);
  let offset = options.fromLastAttempt ? lastAttemptOffset(file) : 0;
  let pending = "";
  // A read can end inside a multi-byte character; the decoder carries it over to the next read.
  const decoder = new StringDecoder("utf8");
  const reader = new RelayReader(file);
  try {
    for (;;) {
      if (options.signal?.aborted) return;
      dirty = false;
      const appended = reader.read(offset, options.onRead);
      if (appended.length > 0) {
        offset += appended.length;
        pending += decoder.write(appended);
        const last = pending.lastIndexOf("\n");
        // A read that filled the buffer may have left more behind; otherwise everything written before the
        // read was read, and a later write sets `dirty` through the watch.
        const more = appended.length === READ_CHUNK;
        if (last < 0) continue;
        // Everything read so far goes out as one batch, so a caller can write it with one syscall.
        const lines = pending.slice(0, last).split("\n");
        pending = pending.slice(last + 1);
        const batch: RelayLine[] = [];
        for (const line of lines) {
          const parsed = parseRelayLine(line);
          batch.push(parsed);
          if (parsed.kind === "end") {
            yield batch;
            return;
          }
        }
        yield batch;
        if (more) continue;
      }
      if (dirty) continue;
      const timedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          wake = null;
          resolve(true);
        }, options.pollMs);
        wake = () => {
          clearTimeout(timer);
          wake = null;
          resolve(false);
        };
      });
      // A poll period with nothing new (a requeued job waiting in the queue, say): the file is let go until
      // data flows again, so idle followers hold no descriptor and a pruned relay's space is freed.
      if (timedOut) reader.close();
      if (timedOut && !dirty && isEnded) {
        // Nothing new for a whole poll period: if the job ended without writing `#end` (its writer died
        // between the commit and the line), read once more, then end the follow from the database's word.
        const ended = isEnded();
        if (ended) {
          if (reader.read(offset).length > 0) continue;
          yield [{ kind: "end", end: ended }];
          return;
        }
      }
    }
  } finally {
    reader.close();
    watcher.close();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** How many answers a relay holds: its `#start` lines (0 without a relay). */
export function relayStartCount(dataDir: string, jobId: string): number {
  let text: Buffer;
  try {
    text = fs.readFileSync(relayPath(dataDir, jobId));
  } catch {
    return 0;
  }
  let count = text.subarray(0, 7).toString() === "#start " ? 1 : 0;
  for (let at = text.indexOf("\n#start "); at >= 0; at = text.indexOf("\n#start ", at + 1)) count++;
  return count;
}

/** Byte offset of the last `#start` line in a relay (0 when there is none). */
function lastAttemptOffset(file: string): number {
  try {
    return lastAttemptOffsetIn(fs.readFileSync(file));
  } catch {
    return 0;
  }
}

function lastAttemptOffsetIn(text: Buffer): number {
  const at = text.lastIndexOf("\n#start ");
  return at < 0 ? 0 : at + 1;
}

const READ_CHUNK = 256 * 1024;
// One buffer for every read: reads are synchronous and each result is decoded before the next read.
const readBuffer = Buffer.allocUnsafe(READ_CHUNK);

/**
 * Reads what was appended to a relay past an offset, up to a bound (a view of a shared buffer: use it
 * before the next read). Until the relay first shows data, each read opens the file and closes it again: a
 * gateway may follow thousands of queued jobs' relays at once, and an inotify watch costs no file
 * descriptor. From the first data on (the job is running, and its chunks come one read each), the file
 * stays open until the follow ends or a poll period passes with nothing new.
 */
class RelayReader {
  private fd: number | null = null;

  constructor(private readonly file: string) {}

  read(offset: number, onRead?: (appendedAtMs: number) => void): Buffer {
    let fd = this.fd;
    if (fd === null) {
      try {
        fd = fs.openSync(this.file, "r");
      } catch (err) {
        // Pruned while followed: nothing more will come; the database's word ends the follow.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
        throw err;
      }
    }
    let n = 0;
    try {
      n = fs.readSync(fd, readBuffer, 0, READ_CHUNK, offset);
      if (n > 0 && onRead) onRead(fs.fstatSync(fd).mtimeMs);
    } finally {
      if (n > 0) this.fd = fd;
      else if (this.fd === null) fs.closeSync(fd);
    }
    return readBuffer.subarray(0, n);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Resolves true once the relay file exists (creating it for a job that ended without one), false on abort. */
async function waitForFile(
  dataDir: string,
  jobId: string,
  pollMs: number,
  signal: AbortSignal | undefined,
  isEnded: (() => RelayEnd | null) | null,
): Promise<boolean> {
  const file = relayPath(dataDir, jobId);
  for (;;) {
    if (fs.existsSync(file)) return true;
    if (signal?.aborted) return false;
    if (isEnded?.()) {
      ensureRelay(dataDir, jobId);
      continue;
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, 50)));
  }
}
