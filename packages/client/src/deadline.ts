/**
 * One abort signal for an operation that ends early either because the caller aborted (its signal's
 * reason is kept, as `fetch` keeps it) or because a time limit passed (the reason is what `onTimeout`
 * builds, so the error says which limit it was).
 *
 * Linked by hand rather than with `AbortSignal.any`: the listener on a long-lived caller signal is
 * removed as soon as the operation ends, so a signal shared by thousands of requests holds nothing.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True when the time limit (not the caller) ended the operation. */
  readonly timedOut: boolean;
  /** Stops the clock but keeps following the caller's signal (a stream outlives its request timeout). */
  stopTimer(): void;
  /** Stops the clock and forgets the caller's signal. Call it once the operation is over. */
  dispose(): void;
}

export interface DeadlineOptions {
  signal?: AbortSignal | undefined;
  /** No limit when undefined, zero or not finite. */
  timeoutMs?: number | undefined;
  onTimeout?: () => unknown;
}

export function startDeadline(options: DeadlineOptions): Deadline {
  const controller = new AbortController();
  const { signal: callerSignal, timeoutMs } = options;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const followCaller = () => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) controller.abort(callerSignal.reason);
  else callerSignal?.addEventListener("abort", followCaller, { once: true });

  if (!controller.signal.aborted && timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(options.onTimeout ? options.onTimeout() : undefined);
    }, timeoutMs);
  }

  const stopTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    stopTimer,
    dispose() {
      stopTimer();
      callerSignal?.removeEventListener("abort", followCaller);
    },
  };
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
