/** Where a command writes: `process.stdout`/`process.stderr` in the binary, string collectors in tests. */
export interface OutputStream {
  write(chunk: string): unknown;
  /** A terminal: progress bars, colours and redrawn lines are for it only. */
  isTTY?: boolean;
  columns?: number;
}

/**
 * Everything a command touches outside itself, passed in so the whole CLI runs in-process in tests with
 * its own environment, streams and Ctrl-C.
 */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  /** Relative paths (`backup <file>`, FOREMAN_DATA_DIR) resolve against this. */
  cwd: string;
  /**
   * Subscribes to Ctrl-C and returns the unsubscribe function. While a command listens, Ctrl-C is its to
   * handle (`run` cancels its job, `tail` stops); while nobody listens it ends the process.
   */
  onInterrupt(listener: () => void): () => void;
  now(): number;
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects: callers check the signal). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
