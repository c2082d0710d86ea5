import {
  type ChatJobRequest,
  type ForemanClient,
  ForemanHttpError,
  isTerminalState,
  type Job,
  type JobChunk,
  JobStreamError,
} from "@foreman/client";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { EXIT, UsageError } from "../exit-codes.js";
import { connectForeman } from "../foreman.js";
import { formatDuration, msBetween, tokensPerSecond } from "../format.js";
import { type CliIo, type OutputStream, pause } from "../io.js";

interface RunOptions extends JsonOption {
  system?: string;
  format?: string;
  option: string[];
  think?: boolean;
  keepAlive?: string;
  quiet?: boolean;
}

/** How often the job is looked at while it waits, for its queue position and state. */
const PROGRESS_POLL_MS = 1000;
const SIGINT_EXIT = 130;

/**
 * `foreman run <model> <prompt>`: submits a chat job, shows its way through queued (with its position),
 * loading and working on stderr, and streams the answer to stdout. Ctrl-C cancels the job; a second Ctrl-C
 * stops waiting at once.
 */
export function registerRun(program: Command, kit: CommandKit): void {
  withJson(program.command("run"))
    .description("submit a chat job, show its progress on stderr and stream the answer to stdout")
    .argument("<model>", "the model, e.g. llama3.2")
    .argument("<prompt>", 'the user message; "-" reads it from stdin')
    .option("--system <text>", "a system message")
    .option("--format <format>", 'structured output: "json", or a JSON schema')
    .option("-o, --option <key=value>", "a model option, e.g. temperature=0 (repeatable)", collect, [])
    .option("--think", "ask a thinking model to think; the thinking goes to stderr")
    .option("--keep-alive <duration>", 'how long the model stays loaded after the job, e.g. "10m"')
    .option("-q, --quiet", "no progress on stderr, only the answer (and errors)")
    .action(
      kit.act(async (model: string, prompt: string, options: RunOptions) => {
        const request = await buildRequest(kit.io, model, prompt, options);
        return await runJob(kit.io, request, options);
      }),
    );
}

async function buildRequest(io: CliIo, model: string, promptArg: string, options: RunOptions): Promise<ChatJobRequest> {
  const prompt = promptArg === "-" ? await readAll(io.stdin) : promptArg;
  const messages: ChatJobRequest["messages"] = [];
  if (options.system) messages.push({ role: "system", content: options.system });
  messages.push({ role: "user", content: prompt });
  const request: ChatJobRequest = { model, messages };
  if (options.option.length > 0) request.options = parseModelOptions(options.option);
  if (options.format !== undefined) request.format = parseFormat(options.format);
  if (options.think) request.think = true;
  if (options.keepAlive !== undefined) request.keep_alive = options.keepAlive;
  return request;
}

async function runJob(io: CliIo, request: ChatJobRequest, options: RunOptions): Promise<number> {
  const { client } = connectForeman(io);
  const progress = new ProgressLine(io.stderr, options.quiet === true);
  const hardStop = new AbortController();
  let interrupts = 0;
  let jobId: string | null = null;
  let cancelAsked = false;
  const askCancel = () => {
    if (jobId === null || cancelAsked) return;
    cancelAsked = true;
    progress.note(`canceling job ${jobId} (Ctrl-C again to stop waiting)`);
    client.cancel(jobId).catch((error: unknown) => {
      // 409: it ended meanwhile; the end is reported below either way.
      if (!(error instanceof ForemanHttpError && error.status === 409)) {
        progress.note(`could not cancel job ${jobId}: ${(error as Error).message}`);
      }
    });
  };
  const unsubscribe = io.onInterrupt(() => {
    interrupts++;
    if (interrupts === 1) askCancel();
    else hardStop.abort();
  });
  try {
    const submitted = await client.submit(request, {
      idempotencyKey: globalThis.crypto.randomUUID(),
      signal: hardStop.signal,
    });
    jobId = submitted.id;
    progress.show(submitted);
    if (interrupts > 0) askCancel();

    const watcher = new AbortController();
    const onHardStop = () => watcher.abort();
    hardStop.signal.addEventListener("abort", onHardStop, { once: true });
    const watching = watchProgress(client, submitted.id, progress, watcher.signal);
    let streamError: string | null = null;
    try {
      streamError = await streamAnswer(client, submitted.id, io, options, progress, watcher, hardStop.signal);
    } finally {
      watcher.abort();
      hardStop.signal.removeEventListener("abort", onHardStop);
      await watching;
    }
    const job = await client.wait(submitted.id, { signal: hardStop.signal });
    return report(io, job, streamError, options, progress);
  } catch (error) {
    if (hardStop.signal.aborted) {
      progress.note(
        jobId === null
          ? "stopped before the job was submitted"
          : `stopped waiting; job ${jobId} was asked to cancel (foreman job ${jobId})`,
      );
      return SIGINT_EXIT;
    }
    if (jobId !== null) progress.note(`the job goes on without this command: foreman job ${jobId}`);
    throw error;
  } finally {
    unsubscribe();
  }
}

/** Streams the answer's text to stdout; resolves with the error line the stream ended on, if any. */
async function streamAnswer(
  client: ForemanClient,
  id: string,
  io: CliIo,
  options: RunOptions,
  progress: ProgressLine,
  watcher: AbortController,
  signal: AbortSignal,
): Promise<string | null> {
  let started = false;
  let lastChar = "\n";
  try {
    for await (const chunk of client.stream(id, { signal })) {
      if (!started) {
        // The first chunk is the news the poll was waiting for.
        started = true;
        watcher.abort();
        progress.showState(id, "working");
        progress.clear();
      }
      const { text, thinking } = chunkText(chunk);
      if (thinking && options.think && !options.quiet) io.stderr.write(thinking);
      if (text && !options.json) {
        io.stdout.write(text);
        lastChar = text.at(-1) ?? lastChar;
      }
    }
    return null;
  } catch (error) {
    if (error instanceof JobStreamError) return error.error;
    throw error;
  } finally {
    if (lastChar !== "\n") io.stdout.write("\n");
  }
}

/** Polls the job while it waits (position, loading) until it works or ends; a failed poll only skips a beat. */
async function watchProgress(client: ForemanClient, id: string, progress: ProgressLine, signal: AbortSignal) {
  while (!signal.aborted) {
    try {
      const job = await client.get(id, { signal });
      if (signal.aborted) return;
      progress.show(job);
      if (job.state === "working" || isTerminalState(job.state)) return;
    } catch {
      if (signal.aborted) return;
    }
    await pause(PROGRESS_POLL_MS, signal);
  }
}

function report(io: CliIo, job: Job, streamError: string | null, options: RunOptions, progress: ProgressLine): number {
  if (options.json) printJson(io, job);
  if (job.state === "done") {
    progress.note(`job ${job.id} done${summary(job)}`);
    return EXIT.ok;
  }
  const reason = job.error ?? streamError;
  // The outcome of a failed or canceled job is printed even with --quiet: it is the error.
  progress.clear();
  io.stderr.write(`foreman: job ${job.id} ${job.state}${reason ? `: ${reason}` : ""}\n`);
  return EXIT.jobUnsuccessful;
}

function summary(job: Job): string {
  const parts: string[] = [];
  const ran = msBetween(job.loading_at, job.ended_at);
  if (ran !== null) parts.push(formatDuration(ran));
  const rate = tokensPerSecond(job.metrics);
  if (job.metrics?.eval_count !== undefined) {
    parts.push(`${job.metrics.eval_count} tokens${rate === null ? "" : ` at ${rate.toFixed(1)} tok/s`}`);
  }
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}

function chunkText(chunk: JobChunk): { text: string; thinking: string } {
  if ("message" in chunk && chunk.message)
    return { text: chunk.message.content ?? "", thinking: chunk.message.thinking ?? "" };
  if ("response" in chunk) return { text: chunk.response ?? "", thinking: chunk.thinking ?? "" };
  return { text: "", thinking: "" };
}

/**
 * The job's progress on stderr: on a terminal one line redrawn in place (cleared before the answer
 * starts), elsewhere one line per change, so logs and tests see each step.
 */
class ProgressLine {
  private last = "";
  private drawn = false;

  constructor(
    private readonly stream: OutputStream,
    private readonly quiet: boolean,
  ) {}

  show(job: Job): void {
    const where = job.state === "queued" && job.position !== undefined ? ` (position ${job.position})` : "";
    const detail = job.state === "loading" ? ` ${job.model}` : where;
    this.update(`job ${job.id}: ${job.state}${detail}`);
  }

  showState(id: string, state: string): void {
    this.update(`job ${id}: ${state}`);
  }

  /** A line of its own that stays. */
  note(text: string): void {
    if (this.quiet) return;
    this.clear();
    this.stream.write(`${text}\n`);
  }

  clear(): void {
    if (this.drawn) this.stream.write("\r\x1b[K");
    this.drawn = false;
  }

  private update(text: string): void {
    if (this.quiet || text === this.last) return;
    this.last = text;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[K${text}`);
      this.drawn = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `key=value` pairs; values are JSON when they parse as JSON (numbers, booleans, arrays), else text. */
export function parseModelOptions(pairs: string[]): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--option expects key=value, got ${JSON.stringify(pair)}`);
    const text = pair.slice(eq + 1);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // Plain text, such as a stop word.
    }
    options[pair.slice(0, eq)] = value;
  }
  return options;
}

function parseFormat(text: string): ChatJobRequest["format"] {
  if (text === "json") return "json";
  try {
    const schema = JSON.parse(text) as unknown;
    if (schema && typeof schema === "object" && !Array.isArray(schema)) return schema as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new UsageError('--format must be "json" or a JSON schema object');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(typeof piece === "string" ? Buffer.from(piece) : piece);
  return Buffer.concat(pieces).toString("utf8");
}
