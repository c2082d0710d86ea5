import fs from "node:fs";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";

/**
 * The per-job relay: an append-only NDJSON file under `FOREMAN_DATA_DIR/relays/` that the worker writes as
 * the target streams and any gateway follows (SPEC §1). Data lines are the target's chunks, byte for byte
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

/** Creates the relay file if it does not exist yet, so followers can watch it before the worker writes. */
export function ensureRelay(dataDir: string, jobId: string): string {
  const file = relayPath(dataDir, jobId);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.closeSync(fs.openSync(file, "a"));
  return file;
}

/** Appends control and data lines. One `write(2)` per line keeps lines whole for concurrent readers. */
export class RelayWriter {
  private fd: number | null;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, "a");
  }

  static open(dataDir: string, jobId: string): RelayWriter {
    return new RelayWriter(relayPath(dataDir, jobId));
  }

  start(start: RelayStart): void {
    this.write(`#start ${JSON.stringify(start)}\n`);
  }

  /** `line` is one chunk without its trailing newline. */
  data(line: string): void {
    this.write(`${line}\n`);
  }

  end(end: RelayEnd): void {
    this.write(`#end ${JSON.stringify(end)}\n`);
    this.close();
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private write(text: string): void {
    if (this.fd === null) throw new Error(`relay ${this.file} is closed`);
    fs.writeSync(this.fd, text);
  }
}

/** Appends an end line for a job no worker is writing (canceled while queued, or finished by recovery). */
export function appendRelayEnd(dataDir: string, jobId: string, end: RelayEnd): void {
  const file = relayPath(dataDir, jobId);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, `#end ${JSON.stringify(end)}\n`);
}

export function removeRelay(dataDir: string, jobId: string): void {
  fs.rmSync(relayPath(dataDir, jobId), { force: true });
}

export interface FollowOptions {
  /** Bounded fallback: re-read at least this often even if no file-system event arrives (ms). */
  pollMs: number;
  signal?: AbortSignal;
  /** Consulted on each fallback poll: a job that ended without an `#end` line (a crash) ends the follow. */
  isEnded?: () => RelayEnd | null;
  /** Start at the last `#start` already written (a requeued job's earlier attempts are skipped). */
  fromLastAttempt?: boolean;
}

/**
 * Follows a relay from its first byte: yields the lines appended since the last read, in batches, waking on
 * a file-system watch (inotify on Linux) with a bounded fallback poll, and returns after the `#end` line.
 */
export async function* followRelay(file: string, options: FollowOptions): AsyncGenerator<RelayLine[]> {
  if (!(await waitForFile(file, options))) return;
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
  try {
    for (;;) {
      if (options.signal?.aborted) return;
      dirty = false;
      const appended = readAppended(file, offset);
      if (appended.length > 0) {
        offset += appended.length;
        pending += decoder.write(appended);
        const last = pending.lastIndexOf("\n");
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
        continue;
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
      if (timedOut && !dirty && options.isEnded) {
        // Nothing new for a whole poll period: if the job ended without writing `#end` (its writer died
        // between the commit and the line), read once more, then end the follow from the database's word.
        const ended = options.isEnded();
        if (ended) {
          if (readAppended(file, offset).length > 0) continue;
          yield [{ kind: "end", end: ended }];
          return;
        }
      }
    }
  } finally {
    watcher.close();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** Byte offset of the last `#start` line in a relay (0 when there is none). */
function lastAttemptOffset(file: string): number {
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch {
    return 0;
  }
  const at = text.lastIndexOf("\n#start ");
  return at < 0 ? 0 : at + 1;
}

const READ_CHUNK = 256 * 1024;
// One buffer for every read: reads are synchronous and each result is decoded before the next read.
const readBuffer = Buffer.allocUnsafe(READ_CHUNK);

/**
 * What was appended past `offset`, up to a bound (a view of a shared buffer: use it before the next read). The file is opened per read rather than held: a gateway
 * may follow thousands of queued jobs' relays at once, and an inotify watch costs no file descriptor.
 */
function readAppended(file: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (err) {
    // Pruned while followed: nothing more will come; the database's word ends the follow.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
    throw err;
  }
  try {
    const n = fs.readSync(fd, readBuffer, 0, READ_CHUNK, offset);
    return readBuffer.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Resolves true once the relay file exists (creating it for a job that ended without one), false on abort. */
async function waitForFile(file: string, options: FollowOptions): Promise<boolean> {
  for (;;) {
    if (fs.existsSync(file)) return true;
    if (options.signal?.aborted) return false;
    if (options.isEnded?.()) {
      ensureRelay(path.dirname(path.dirname(file)), path.basename(file, ".ndjson"));
      continue;
    }
    await new Promise((r) => setTimeout(r, Math.min(options.pollMs, 50)));
  }
}
