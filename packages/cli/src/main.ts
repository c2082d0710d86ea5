#!/usr/bin/env node
import { runCli } from "./cli.js";

const interruptListeners = new Set<() => void>();
process.on("SIGINT", () => {
  // Nobody is handling Ctrl-C (the command has no job to cancel or stream to stop): end as a shell expects.
  if (interruptListeners.size === 0) process.exit(130);
  for (const listener of [...interruptListeners]) listener();
});
// `foreman jobs | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
  onInterrupt(listener) {
    interruptListeners.add(listener);
    return () => interruptListeners.delete(listener);
  },
  now: () => Date.now(),
});
process.exitCode = code;
// Output is flushed by letting the process end on its own; an idle keep-alive socket must not hold it open.
setTimeout(() => process.exit(code), 2000).unref();
