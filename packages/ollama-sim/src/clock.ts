import { performance } from "node:perf_hooks";

/**
 * Time source for keep-alive expiry and for the timestamps the simulator prints
 * (`created_at`, `expires_at`, `modified_at`). Model load waits and token pacing always use real
 * timers: they are short, and a test that fakes them would be testing nothing.
 */
export interface SimClock {
  /** Milliseconds since the Unix epoch; may carry a fraction (sub-millisecond precision). */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Wall-clock time with microsecond resolution, so timestamps look like Go's nanosecond ones. */
export const realClock: SimClock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface ManualTimer {
  due: number;
  seq: number;
  callback: () => void;
}

/**
 * A clock that moves only when told to: tests advance it to make keep-alive timers fire without
 * sleeping.
 */
export class ManualClock implements SimClock {
  private current: number;
  private seq = 0;
  private readonly timers = new Set<ManualTimer>();

  constructor(startMs = Date.UTC(2025, 0, 1, 12, 0, 0)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer: ManualTimer = { due: this.current + Math.max(0, ms), seq: this.seq++, callback };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as ManualTimer);
  }

  /** Moves time forward, firing every timer that falls due, in due order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const timer of this.timers) {
        if (
          timer.due <= target &&
          (!next || timer.due < next.due || (timer.due === next.due && timer.seq < next.seq))
        ) {
          next = timer;
        }
      }
      if (!next) break;
      this.timers.delete(next);
      this.current = Math.max(this.current, next.due);
      next.callback();
    }
    this.current = target;
  }

  /** Timers still waiting to fire. */
  pendingTimers(): number {
    return this.timers.size;
  }
}
