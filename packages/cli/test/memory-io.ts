import { Readable } from "node:stream";
import type { CliIo, OutputStream } from "../src/io.js";

/** An output stream that keeps what was written and lets a test await a piece of it. */
export class Captured implements OutputStream {
  text = "";
  isTTY: boolean;
  private waiters: Array<{ test: (text: string) => boolean; resolve: () => void }> = [];

  constructor(tty = false) {
    this.isTTY = tty;
  }

  write(chunk: string): boolean {
    this.text += chunk;
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(this.text)) return true;
      w.resolve();
      return false;
    });
    return true;
  }

  /** Resolves once the output contains `piece` (or satisfies the test); rejects after `timeoutMs`. */
  waitFor(piece: string | ((text: string) => boolean), timeoutMs = 10_000): Promise<void> {
    const test = typeof piece === "string" ? (text: string) => text.includes(piece) : piece;
    if (test(this.text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`output never showed ${String(piece)}; it was:\n${this.text}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ test, resolve: done });
    });
  }
}

export interface MemoryIo extends CliIo {
  stdout: Captured;
  stderr: Captured;
  /** Presses Ctrl-C: the listening command handles it; returns whether anyone listened. */
  interrupt(): boolean;
}

/** The CLI's I/O held in memory: only the environment the test gives, no terminal unless asked for. */
export function memoryIo(
  env: Record<string, string | undefined>,
  options: { tty?: boolean; stdin?: string; cwd?: string; now?: () => number } = {},
): MemoryIo {
  const listeners = new Set<() => void>();
  return {
    stdout: new Captured(options.tty),
    stderr: new Captured(options.tty),
    stdin: Readable.from([options.stdin ?? ""]),
    env,
    cwd: options.cwd ?? process.cwd(),
    onInterrupt(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    interrupt() {
      for (const listener of [...listeners]) listener();
      return listeners.size > 0;
    },
    now: options.now ?? (() => Date.now()),
  };
}
