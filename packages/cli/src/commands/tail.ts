import type { Job } from "@foreman/client";
import { sameModel } from "@foreman/shared/model-name";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, withJson } from "../command-kit.js";
import { EXIT } from "../exit-codes.js";
import { connectForeman } from "../foreman.js";
import { formatClock, formatDuration, msBetween, oneLine, tokensPerSecond } from "../format.js";
import { type Endpoint, HttpStatusError, openStream } from "../http.js";
import { type CliIo, pause } from "../io.js";
import type { TargetEventData } from "../ops-types.js";
import { parseSse, type SseMessage } from "../sse.js";
import { type Style, styleFor } from "../style.js";

interface TailOptions extends JsonOption {
  model?: string;
  job?: string;
  since?: string;
}

/** The server sends `: keep-alive` every 15 s; this long without a byte means the connection is dead. */
const IDLE_LIMIT_MS = 45_000;
/** EventSource's usual first delay, until the server's `retry:` says otherwise. */
const DEFAULT_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** `foreman tail`: live job transitions and target/model events from GET /events, one line each. */
export function registerTail(program: Command, kit: CommandKit): void {
  withJson(program.command("tail"))
    .description("follow job transitions and target and model events live, one line each (Ctrl-C stops)")
    .option("--model <name>", "only events of this model")
    .option("--job <id>", "only the transitions of this job")
    .option("--since <event-id>", "replay the transitions recorded after this event id first")
    .action(
      kit.act(async (options: TailOptions) => {
        const { io } = kit;
        const { endpoint } = connectForeman(io);
        const stop = new AbortController();
        const unsubscribe = io.onInterrupt(() => stop.abort());
        try {
          await followEvents(endpoint, options, io, stop.signal);
        } finally {
          unsubscribe();
        }
        return EXIT.ok;
      }),
    );
}

/**
 * Reads the event stream until `signal` aborts. The first connection must succeed (else the command fails:
 * exit 3 when foreman cannot be reached); later losses reconnect with `Last-Event-ID`, so no transition is
 * missed or printed twice, after the server's `retry:` delay, doubling up to 30 s while it keeps failing.
 */
async function followEvents(endpoint: Endpoint, options: TailOptions, io: CliIo, signal: AbortSignal): Promise<void> {
  const print = eventPrinter(io, options);
  let lastEventId = options.since;
  let retryMs = DEFAULT_RETRY_MS;
  let failures = 0;
  let connectedOnce = false;
  while (!signal.aborted) {
    const connection = new AbortController();
    const onStop = () => connection.abort(signal.reason);
    signal.addEventListener("abort", onStop, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const stillAlive = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => connection.abort(new Error(`no data for ${formatDuration(IDLE_LIMIT_MS)}`)),
        IDLE_LIMIT_MS,
      );
    };
    let lost: string;
    try {
      const body = await openStream(
        endpoint,
        {
          path: "/events",
          query: { model: options.model, job: options.job },
          headers: lastEventId === undefined ? undefined : { "Last-Event-ID": lastEventId },
          signal: connection.signal,
        },
        "text/event-stream",
      );
      if (connectedOnce) io.stderr.write(`foreman: reconnected${lastEventId ? ` after event ${lastEventId}` : ""}\n`);
      else io.stderr.write("foreman: following events (Ctrl-C to stop)\n");
      connectedOnce = true;
      failures = 0;
      stillAlive();
      for await (const message of parseSse(body, {
        lastEventId,
        onRetry: (ms) => {
          retryMs = ms;
        },
        onActivity: stillAlive,
      })) {
        lastEventId = message.lastEventId;
        print(message);
      }
      lost = "the server closed it";
    } catch (error) {
      if (signal.aborted) return;
      // Nothing to resume yet, or an answer no retry will change (no token, no such route): report it.
      if (!connectedOnce) throw error;
      if (error instanceof HttpStatusError && error.status < 500) throw error;
      lost = connection.signal.aborted ? String((connection.signal.reason as Error)?.message) : describe(error);
    } finally {
      clearTimeout(idle);
      signal.removeEventListener("abort", onStop);
    }
    if (signal.aborted) return;
    const delay = Math.min(retryMs * 2 ** failures, MAX_RETRY_MS);
    failures++;
    io.stderr.write(`foreman: event stream lost (${lost}); reconnecting in ${formatDuration(delay)}\n`);
    await pause(delay, signal);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Prints one event as a line (or, with --json, one JSON object per line), after the client-side filters. */
function eventPrinter(io: CliIo, options: TailOptions): (message: SseMessage) => void {
  const style = styleFor(io.stdout, io.env);
  const widths = { model: 16 };
  return (message) => {
    let data: unknown;
    try {
      data = JSON.parse(message.data);
    } catch {
      data = message.data;
    }
    if (!wanted(message.event, data, options)) return;
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ id: message.id ?? null, event: message.event, data })}\n`);
      return;
    }
    io.stdout.write(`${formatEventLine(message.event, data, io.now(), widths, style)}\n`);
  };
}

/** The gateway filters by `?model=` and `?job=`; this holds a gateway that ignores them to the same result. */
function wanted(event: string, data: unknown, options: TailOptions): boolean {
  const record = (data ?? {}) as { id?: string; model?: string };
  const isJob = event.startsWith("job.");
  if (options.job && (!isJob || record.id !== options.job)) return false;
  if (options.model && (isJob || event.startsWith("model.")) && !sameModel(record.model, options.model)) return false;
  return true;
}

const SUBJECT_WIDTH = 26; // a ULID
const STATE_WIDTH = 9;

/** `04:00:12.345  01J…  llama3.2:latest   working   load 0.3 s`; target and model events fill the same columns. */
export function formatEventLine(
  event: string,
  data: unknown,
  now: number,
  widths: { model: number },
  style: Style,
): string {
  let at: string | null | undefined;
  let subject: string;
  let model: string;
  let state: string;
  let extra: string;
  if (event.startsWith("job.") && data && typeof data === "object") {
    const job = data as Job;
    state = event.slice(4);
    at = stateTime(job, state);
    subject = job.id;
    model = job.model;
    extra = jobExtra(job, state);
  } else if ((event.startsWith("target.") || event.startsWith("model.")) && data && typeof data === "object") {
    const info = data as TargetEventData;
    const [kind = "", what = ""] = event.split(".");
    at = info.at;
    subject = kind;
    model = kind === "model" ? (info.model ?? "") : (info.url ?? "");
    state = what;
    extra = info.error ? oneLine(info.error, 120) : "";
  } else {
    subject = event;
    model = "";
    state = "";
    extra = oneLine(typeof data === "string" ? data : JSON.stringify(data), 120);
  }
  widths.model = Math.max(widths.model, model.length);
  const columns = [
    style.dim(formatClock(at, now)),
    subject.padEnd(SUBJECT_WIDTH),
    model.padEnd(widths.model),
    paint(state.padEnd(STATE_WIDTH), state, style),
    extra,
  ];
  return columns.join("  ").trimEnd();
}

function paint(text: string, state: string, style: Style): string {
  if (state === "done" || state === "up" || state === "loaded") return style.green(text);
  if (state === "failed" || state === "down") return style.red(text);
  if (state === "canceled") return style.yellow(text);
  return text;
}

function stateTime(job: Job, state: string): string | null {
  if (state === "queued") return job.queued_at ?? job.created_at;
  if (state === "loading") return job.loading_at;
  if (state === "working") return job.working_at;
  return job.ended_at;
}

function jobExtra(job: Job, state: string): string {
  const parts: string[] = [];
  switch (state) {
    case "queued":
      if (job.position !== undefined) parts.push(`position ${job.position}`);
      if (job.attempts > 0) parts.push(`requeued, ${job.attempts} of ${job.max_attempts} attempts used`);
      break;
    case "loading": {
      const waited = msBetween(job.created_at, job.loading_at);
      if (waited !== null) parts.push(`waited ${formatDuration(waited)}`);
      break;
    }
    case "working": {
      const load = msBetween(job.loading_at, job.working_at);
      if (load !== null) parts.push(`load ${formatDuration(load)}`);
      break;
    }
    case "done": {
      const ran = msBetween(job.loading_at, job.ended_at);
      if (ran !== null) parts.push(`ran ${formatDuration(ran)}`);
      const rate = tokensPerSecond(job.metrics);
      if (job.metrics?.eval_count !== undefined) {
        parts.push(`${job.metrics.eval_count} tokens${rate === null ? "" : ` at ${rate.toFixed(1)} tok/s`}`);
      }
      break;
    }
    default:
      if (job.error) parts.push(oneLine(job.error, 120));
  }
  return parts.join(" · ");
}
