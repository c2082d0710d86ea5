import { type Command, InvalidArgumentError } from "commander";
import type { CliIo } from "./io.js";

/** What every command file gets to register itself: the I/O, and the wrapper that records its exit code. */
export interface CommandKit {
  io: CliIo;
  /** Wraps an action so the exit code it resolves with becomes the process's. */
  act<A extends unknown[]>(action: (...args: A) => Promise<number>): (...args: A) => Promise<void>;
}

export interface JsonOption {
  json?: boolean;
}

/** `--json`: the machine-readable answer on stdout instead of the tables. */
export function withJson(command: Command): Command {
  return command.option("--json", "print JSON for scripts instead of the human-readable output");
}

/** An integer option argument within bounds; anything else is a usage error (exit 2). */
export function integerIn(min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return value;
  };
}

/** Writes a JSON value as one pretty-printed document. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
