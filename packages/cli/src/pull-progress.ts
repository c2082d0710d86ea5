import type { ProgressResponse } from "@foreman/shared";
import { formatBytes, formatClockDuration, formatDuration, formatRate } from "./format.js";

/** Transfer rate is measured over this much recent time, so the estimate follows the network's mood. */
const RATE_WINDOW_MS = 5000;
/** Less than this much time measured gives no rate yet (one sample is not a speed). */
const MIN_RATE_SPAN_MS = 200;

/**
 * The progress of one model's pull, from Ollama's progress lines: each layer (`digest`) reports its own
 * `total` and `completed`; the model's bytes are the sum over the layers seen so far.
 */
export class PullProgress {
  status = "";
  private readonly layers = new Map<string, { total: number; completed: number }>();
  private readonly samples: Array<{ at: number; completed: number }> = [];
  readonly startedAt: number;

  constructor(
    readonly model: string,
    private readonly now: () => number,
  ) {
    this.startedAt = now();
  }

  update(line: ProgressResponse): void {
    this.status = line.status;
    if (line.digest && line.total) {
      this.layers.set(line.digest, { total: line.total, completed: Math.min(line.completed ?? 0, line.total) });
      const at = this.now();
      this.samples.push({ at, completed: this.completed });
      while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= RATE_WINDOW_MS) this.samples.shift();
    }
  }

  get completed(): number {
    let sum = 0;
    for (const layer of this.layers.values()) sum += layer.completed;
    return sum;
  }

  get total(): number {
    let sum = 0;
    for (const layer of this.layers.values()) sum += layer.total;
    return sum;
  }

  /** 0 to 1, or null before any layer reported its size. */
  get fraction(): number | null {
    const total = this.total;
    return total > 0 ? this.completed / total : null;
  }

  /** Bytes per second over the recent window, or null until there is enough to measure. */
  get rate(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < MIN_RATE_SPAN_MS) return null;
    return (last.completed - first.completed) / ((last.at - first.at) / 1000);
  }

  /** Seconds left at the current rate, or null. */
  get secondsLeft(): number | null {
    const rate = this.rate;
    if (rate === null || rate <= 0) return null;
    return (this.total - this.completed) / rate;
  }

  get elapsedMs(): number {
    return this.now() - this.startedAt;
  }
}

/** Whether a status is a layer download ("pulling 8eeb52dfb3bb"), whose bytes the bar shows. */
function isTransfer(progress: PullProgress): boolean {
  return progress.status.startsWith("pulling ") && progress.status !== "pulling manifest";
}

/** `llama3.2:latest  [#########-----------]  45%  0.9 GB/2.0 GB  35 MB/s  0:23 left`, for a terminal. */
export function renderBar(progress: PullProgress, nameWidth: number, barWidth = 24): string {
  const name = progress.model.padEnd(nameWidth);
  const fraction = progress.fraction;
  if (!isTransfer(progress) || fraction === null) return `${name}  ${progress.status}`;
  const filled = Math.round(fraction * barWidth);
  const bar = `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}]`;
  return `${name}  ${bar}  ${transferFigures(progress)}`;
}

/** `llama3.2:latest: pulling 8eeb52dfb3bb  45%  0.9 GB/2.0 GB  35 MB/s  0:23 left`, for logs and pipes. */
export function renderPlain(progress: PullProgress): string {
  if (!isTransfer(progress) || progress.fraction === null) return `${progress.model}: ${progress.status}`;
  return `${progress.model}: ${progress.status}  ${transferFigures(progress)}`;
}

/** The end of one model's pull. */
export function renderDone(progress: PullProgress): string {
  const size = progress.total > 0 ? `${formatBytes(progress.total)}, ` : "";
  return `${progress.model}: pulled (${size}${formatDuration(progress.elapsedMs)})`;
}

function transferFigures(progress: PullProgress): string {
  const percent = `${Math.floor((progress.fraction ?? 0) * 100)}%`.padStart(4);
  const bytes = `${formatBytes(progress.completed)}/${formatBytes(progress.total)}`;
  return `${percent}  ${bytes}  ${formatRate(progress.rate)}  ${formatClockDuration(progress.secondsLeft)} left`;
}

/**
 * When a plain (non-terminal) rendering deserves a new line: the status changed, or the transfer crossed
 * another tenth. A terminal redraws on every line instead (throttled by its caller).
 */
export function plainLineDue(progress: PullProgress, previous: { status: string; tenth: number }): boolean {
  const tenth = Math.floor((progress.fraction ?? 0) * 10);
  const due = progress.status !== previous.status || (isTransfer(progress) && tenth > previous.tenth);
  if (progress.status !== previous.status) previous.tenth = isTransfer(progress) ? tenth : -1;
  else if (due) previous.tenth = tenth;
  previous.status = progress.status;
  return due;
}
