import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { SimClock } from "./clock.js";
import type { CompletionFormat, FinalInfo } from "./completion-formats.js";
import { contextTokens, type GenerationPlan, joinTokens } from "./generation.js";
import { formatGoTime, msToNs } from "./go-time.js";
import type { CallRecord } from "./stats.js";

/** At most this many token chunks go into one socket write. */
const MAX_CHUNKS_PER_WRITE = 512;

export interface CompletionRun {
  res: ServerResponse;
  call: CallRecord;
  format: CompletionFormat;
  plan: GenerationPlan;
  stream: boolean;
  clock: SimClock;
  /** Clock time the request arrived and the model was ready (load_duration is the difference). */
  startedAt: number;
  loadedAt: number;
  promptEvalCount: number;
  promptTokensPerSecond: number;
  tokensPerSecond: number;
  /** Extra wait before the first token (the slow-first-token fault). */
  firstTokenDelayMs: number;
  /** The die-mid-stream fault: cut the connection after this many chunks. */
  dieAfterChunks: number | undefined;
  /** Generate only: the `context` the final chunk carries is seeded by this. */
  contextSeed?: string;
  /** Called when the connection is cut on purpose (die mid-stream). */
  onDie?: () => void;
}

/** Resolves after `ms`, or as soon as the client goes away. */
export function pauseUnlessClosed(ms: number, call: CallRecord): Promise<void> {
  if (ms <= 0 || call.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      call.onClose.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    call.onClose.add(done);
  });
}

/** Resolves on the next turn of the event loop (for waits below a timer's 1 ms resolution). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function waitForDrain(res: ServerResponse, call: CallRecord): Promise<void> {
  if (call.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      call.onClose.delete(done);
      resolve();
    };
    res.on("drain", done);
    call.onClose.add(done);
  });
}

/** Cuts the connection after what was written so far has reached the kernel. */
function dieAfterWrite(res: ServerResponse, call: CallRecord, data: string): void {
  call.killedByServer = true;
  const socket = res.socket;
  const kill = () => socket?.destroy();
  if (data !== "") res.write(data, kill);
  else {
    res.flushHeaders();
    setImmediate(kill);
  }
}

/**
 * Plays one generation to the client at the model's pace: the prompt is evaluated first (plus any
 * slow-first-token delay), then token i goes out (i + 1) / tokensPerSecond later. Tokens that fall due
 * together are written together, so a very fast model needs no per-token timer and still sends
 * one chunk per token. A `stream: false` request waits the same time and gets one object.
 */
export async function runCompletion(run: CompletionRun): Promise<void> {
  const { res, call, format, plan, clock } = run;
  const count = plan.tokens.length;
  const promptEvalMs = (run.promptEvalCount / run.promptTokensPerSecond) * 1000;
  const intervalMs = 1000 / run.tokensPerSecond;

  const finalInfo = (): FinalInfo => {
    const now = clock.now();
    const loadDuration = Math.max(1, msToNs(run.loadedAt - run.startedAt));
    const promptEvalDuration = Math.max(1, msToNs(promptEvalMs));
    const evalDuration = Math.max(1, msToNs(count * intervalMs));
    const thinking = joinTokens(plan.tokens, 0, plan.thinkingCount);
    const content = joinTokens(plan.tokens, plan.thinkingCount, count);
    const info: FinalInfo = {
      createdAt: formatGoTime(now, true),
      createdAtMs: now,
      doneReason: plan.doneReason,
      content,
      thinking,
      totalDuration: Math.max(msToNs(now - run.startedAt), loadDuration + promptEvalDuration + evalDuration),
      loadDuration,
      promptEvalCount: run.promptEvalCount,
      promptEvalDuration,
      evalCount: count,
      evalDuration,
    };
    if (run.contextSeed !== undefined) {
      info.context = contextTokens(`${run.contextSeed}\u0000${thinking}${content}`, run.promptEvalCount + count);
    }
    return info;
  };

  if (!run.stream) {
    await pauseUnlessClosed(promptEvalMs + run.firstTokenDelayMs + count * intervalMs, call);
    if (call.closed) return;
    const body = format.whole(finalInfo());
    res.writeHead(200, { "Content-Type": format.wholeContentType, "Content-Length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }

  // Headers go out with the first chunk, as gin's streaming does: a slow first token delays them.
  res.writeHead(200, { "Content-Type": format.streamContentType });
  await pauseUnlessClosed(promptEvalMs + run.firstTokenDelayMs, call);
  if (call.closed) return;

  const dieAt = run.dieAfterChunks === undefined ? undefined : Math.min(run.dieAfterChunks, count);
  if (dieAt === 0) {
    run.onDie?.();
    dieAfterWrite(res, call, "");
    return;
  }

  const firstDue = performance.now();
  let sent = 0;
  while (sent < count) {
    if (call.closed) return;
    const elapsed = performance.now() - firstDue;
    const due = Math.min(count, Math.floor(elapsed / intervalMs));
    if (due > sent) {
      let upTo = Math.min(due, sent + MAX_CHUNKS_PER_WRITE);
      if (dieAt !== undefined && upTo >= dieAt) upTo = dieAt;
      const now = clock.now();
      const data = format.tokenChunks(plan, sent, upTo, formatGoTime(now, true), now);
      sent = upTo;
      if (dieAt !== undefined && sent >= dieAt) {
        run.onDie?.();
        dieAfterWrite(res, call, data);
        return;
      }
      if (!res.write(data)) await waitForDrain(res, call);
      else if (upTo < due) await nextTurn(); // let other streams in between big batches
      continue;
    }
    const wait = firstDue + (sent + 1) * intervalMs - performance.now();
    if (wait >= 1) await pauseUnlessClosed(wait, call);
    else await nextTurn();
  }
  if (call.closed) return;
  res.end(format.finalChunks(finalInfo()));
}
