#!/usr/bin/env node
// Runs the gateway and the worker (and, with --demo, the Ollama simulator when nothing answers on the
// target address) as child processes with prefixed logs. It restarts a child that dies unexpectedly,
// forwards SIGTERM/SIGINT, and exits once every child has stopped.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const demo = process.argv.includes("--demo");
const targetUrl = (process.env.FOREMAN_OLLAMA_URL || "http://127.0.0.1:11434").replace(/\/+$/, "");

const entries = {
  sim: "packages/ollama-sim/dist/main.js",
  gateway: "packages/gateway/dist/main.js",
  worker: "packages/worker/dist/main.js",
};
for (const [name, file] of Object.entries(entries)) {
  if ((name !== "sim" || demo) && !fs.existsSync(path.join(root, file))) {
    console.error(`[supervisor] ${file} is missing: run "pnpm build" first`);
    process.exit(1);
  }
}

const colors = { sim: 35, gateway: 36, worker: 33, supervisor: 90 };
const useColor = process.stdout.isTTY;
const prefix = (name) => {
  const label = `[${name}]`.padEnd(10);
  return useColor ? `\x1b[${colors[name]}m${label}\x1b[0m ` : `${label} `;
};
const log = (msg) => process.stdout.write(`${prefix("supervisor")}${msg}\n`);

const children = new Map();
let stopping = false;
let exitCode = 0;

function start(name, args = []) {
  const child = spawn(process.execPath, [path.join(root, entries[name]), ...args], {
    cwd: root,
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const startedAt = Date.now();
  for (const stream of [child.stdout, child.stderr]) {
    // The prefix names the process; a pretty line's own "[name]" after its level would say it twice.
    const own = new RegExp(`^(\\S+ \\S+\\s+)\\[${name}\\] `);
    readline
      .createInterface({ input: stream })
      .on("line", (line) => process.stdout.write(`${prefix(name)}${line.replace(own, "$1")}\n`));
  }
  child.on("exit", (code, signal) => {
    children.delete(name);
    if (stopping) {
      if (children.size === 0) process.exit(exitCode);
      return;
    }
    // A child that exits with 2 was refused its configuration or its listen address: restarting it cannot
    // help until the operator changes something (its own last line says what).
    if (code === 2) {
      log(`${name} exited with an error that restarting cannot fix (see its last line); stopping`);
      shutdown("SIGTERM", 2);
      return;
    }
    const delay = Date.now() - startedAt < 5000 ? 2000 : 200;
    log(`${name} exited (${signal ?? code}); restarting in ${delay} ms`);
    setTimeout(() => !stopping && start(name, args), delay);
  });
  children.set(name, child);
}

function shutdown(signal, code = 0) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  if (children.size === 0) process.exit(exitCode);
  for (const child of children.values()) child.kill(signal);
  // Children get their own shutdown budget; this is the backstop.
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
    process.exit(1);
  }, 20_000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGTERM"));
process.on("exit", () => {
  for (const child of children.values()) child.kill("SIGKILL");
});

async function targetAnswers() {
  try {
    const res = await fetch(`${targetUrl}/api/version`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function waitForTarget(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await targetAnswers()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

if (demo) {
  if (await targetAnswers()) {
    log(`something already answers at ${targetUrl}; using it as the target`);
  } else {
    const url = new URL(targetUrl);
    log(`no Ollama at ${targetUrl}; starting the simulator there`);
    start("sim", ["--host", url.hostname, "--port", url.port || "11434"]);
    if (!(await waitForTarget(10_000))) log("the simulator did not answer within 10 s; starting foreman anyway");
  }
}
start("gateway");
start("worker");
