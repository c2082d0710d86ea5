#!/usr/bin/env node
// Checks the image without a Docker engine. docker/build.sh (the script the Dockerfile runs) writes the
// production tree into a temp dir; this script then checks that the tree carries no dev tooling, that every
// path the Dockerfile and docker/compose.yaml run exists in it, and that it works: gateway and worker
// started from it with plain `node` against the simulator (started from the dev tree) answer a chat, a
// stream, an embedding and a POST /jobs, their health checks pass, and SIGTERM stops both with exit 0.
//
// Usage: node docker/check-image-tree.mjs [--tree DIR] [--keep]
//   --tree DIR   check an existing tree instead of building one
//   --keep       leave the temp dir (tree, data, logs) in place
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const keep = args.includes("--keep");
const treeArg = args.includes("--tree") ? args[args.indexOf("--tree") + 1] : undefined;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-image-"));
const tree = treeArg ? path.resolve(treeArg) : path.join(work, "app");
const children = new Set();
const results = [];
const t0 = Date.now();

function check(name, ok, detail = "") {
  results.push({ name, ok });
  const at = ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
  console.log(`${ok ? "ok  " : "FAIL"} ${at}s ${name}${detail ? `: ${detail}` : ""}`);
}

function fail(message) {
  throw new Error(message);
}

/** A child process whose output lines can be awaited (no sleeps): the same idea as the e2e harness. */
function start(name, file, env, extraArgs = []) {
  const child = spawn(process.execPath, [file, ...extraArgs], { cwd: tree, env, stdio: ["ignore", "pipe", "pipe"] });
  const proc = { name, child, lines: [], waiters: [] };
  const log = fs.createWriteStream(path.join(work, `${name}.log`));
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on("line", (line) => {
      log.write(`${line}\n`);
      proc.lines.push(line);
      const ready = proc.waiters.filter((w) => w.test(line));
      proc.waiters = proc.waiters.filter((w) => !ready.includes(w));
      for (const w of ready) w.resolve(line);
    });
  }
  proc.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  proc.exited.then(() => {
    children.delete(proc);
    log.end();
  });
  children.add(proc);
  proc.waitFor = (text, timeoutMs = 30_000) => {
    const seen = proc.lines.find((l) => l.includes(text));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name}: no "${text}" within ${timeoutMs} ms:\n${proc.lines.slice(-10).join("\n")}`)),
        timeoutMs,
      );
      proc.waiters.push({
        test: (l) => l.includes(text),
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      proc.exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}) before "${text}":\n${proc.lines.slice(-10).join("\n")}`));
      });
    });
  };
  return proc;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function duMegabytes(dir) {
  let bytes = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        bytes += fs.statSync(p).size;
        files++;
      }
    }
  };
  walk(dir);
  return { mb: (bytes / 1e6).toFixed(1), files };
}

function build() {
  const t0 = Date.now();
  const run = spawnSync("bash", [path.join(root, "docker/build.sh"), tree], { cwd: root, encoding: "utf8" });
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  if (run.status !== 0) {
    process.stdout.write(run.stdout + run.stderr);
    fail(`docker/build.sh exited ${run.status}`);
  }
  check("docker/build.sh writes the production tree", true, `${seconds} s`);
}

/** What must not ship, and what the Dockerfile and compose file point at, which must. */
function checkContents() {
  const store = path.join(tree, "node_modules/.pnpm");
  const installed = fs.readdirSync(store);
  for (const dev of ["mocha", "typescript", "tsx", "chai", "@biomejs+biome", "@foreman+ollama-sim", "pnpm"]) {
    const found = installed.filter((d) => d.startsWith(`${dev}@`));
    check(`no ${dev.replace("+", "/")} in the tree`, found.length === 0, found.join(", "));
  }
  const sources = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== "node_modules") walk(p);
      else if (e.isFile() && (e.name.endsWith(".ts") || e.name === "tsconfig.json")) sources.push(p);
    }
  };
  walk(path.join(tree, "packages"));
  const packages = fs.readdirSync(path.join(tree, "packages"));
  check(
    "no simulator, TypeScript sources or tests in the packages",
    !packages.includes("ollama-sim") && !sources.length,
  );
  check(
    "the packages are the runtime ones",
    ["gateway", "shared", "worker"].every((p) => packages.includes(p)),
    packages.join(", "),
  );

  const dockerfile = fs.readFileSync(path.join(root, "docker/Dockerfile"), "utf8");
  const compose = fs.readFileSync(path.join(root, "docker/compose.yaml"), "utf8");
  check("the Dockerfile builds with docker/build.sh", /^RUN bash docker\/build\.sh \/app$/m.test(dockerfile));
  const shellForm =
    /^\s*(CMD|ENTRYPOINT)\s+(?!\[)/m.test(dockerfile) || /HEALTHCHECK[^\n]*\sCMD\s+(?!\[)/.test(dockerfile);
  check("CMD, ENTRYPOINT and HEALTHCHECK use the exec form (no shell in front of node)", !shellForm);
  const user = dockerfile.match(/^USER\s+(\S+)/m)?.[1];
  check("the image runs as a non-root user", user !== undefined && !/^(root|0)(:|$)/.test(user), user);
  check(
    "the image sets FOREMAN_HOST=0.0.0.0 and FOREMAN_DATA_DIR=/data on a volume",
    /FOREMAN_HOST=0\.0\.0\.0/.test(dockerfile) &&
      /FOREMAN_DATA_DIR=\/data/.test(dockerfile) &&
      /^VOLUME \["\/data"\]$/m.test(dockerfile),
  );
  const entries = new Set(
    [...`${dockerfile}\n${compose}`.matchAll(/\/app\/(packages\/[\w./-]+\.js)/g)].map((m) => m[1]),
  );
  const missing = [...entries].filter((e) => !fs.existsSync(path.join(tree, e)));
  check(
    "every entry point the Dockerfile and compose file run is in the tree",
    entries.size > 0 && missing.length === 0,
    missing.length ? `missing ${missing.join(", ")}` : [...entries].join(", "),
  );
  if (fs.existsSync(path.join(root, "packages/cli/package.json"))) {
    check("the CLI is on the image's PATH as bin/foreman", fs.existsSync(path.join(tree, "bin/foreman")));
  }
}

async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    fail(`${res.url} answered ${res.status} with ${text.slice(0, 200)}`);
  }
}

function runNode(file, env) {
  const r = spawnSync(process.execPath, [path.join(tree, file)], { cwd: tree, env, encoding: "utf8", timeout: 20_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

async function checkRuns() {
  const sim = start("sim", path.join(root, "packages/ollama-sim/dist/main.js"), { PATH: process.env.PATH }, [
    "--port",
    "0",
    "--load-ms",
    "20",
    "--tps",
    "500",
  ]);
  const simUrl = (await sim.waitFor("ollama-sim listening on")).split(" ").at(-1);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Only what the image sets, so nothing of the developer's environment (or NODE_PATH) helps it run.
  const env = {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    FOREMAN_HOST: "127.0.0.1",
    FOREMAN_PORT: String(port),
    FOREMAN_DATA_DIR: path.join(work, "data"),
    FOREMAN_OLLAMA_URL: simUrl,
    FOREMAN_EMBED_MODEL: "nomic-embed-text",
    FOREMAN_URL: url,
  };
  const gateway = start("gateway", path.join(tree, "packages/gateway/dist/main.js"), env);
  const worker = start("worker", path.join(tree, "packages/worker/dist/main.js"), env);
  await gateway.waitFor("gateway listening");
  await worker.waitFor("active worker");
  await worker.waitFor("target up");
  check("gateway and worker start from the tree with plain node", true);

  const messages = [{ role: "user", content: "Why is the sky blue?" }];
  const chat = await fetch(`${url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ model: "llama3.2", messages, stream: false }),
  });
  const answer = await json(chat);
  check(
    "POST /api/chat answers through the queue",
    chat.status === 200 && answer.done === true && answer.message?.content?.length > 0,
    `${chat.status}, job ${chat.headers.get("x-foreman-job-id")}`,
  );

  const stream = await fetch(`${url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ model: "gemma3:4b", messages }),
  });
  const lines = (await stream.text()).trim().split("\n").map(JSON.parse);
  check(
    "a streamed chat arrives as NDJSON and ends with done",
    stream.headers.get("content-type")?.startsWith("application/x-ndjson") && lines.at(-1)?.done === true,
    lines.at(-1)?.done === true ? `${lines.length} lines` : JSON.stringify(lines.at(-1)),
  );

  const embeds = await Promise.all(
    ["one", "two", "three"].map((input) =>
      fetch(`${url}/api/embed`, { method: "POST", body: JSON.stringify({ model: "nomic-embed-text", input }) }).then(
        json,
      ),
    ),
  );
  check(
    "concurrent POST /api/embed answer",
    embeds.every((e) => e.embeddings?.[0]?.length > 0),
  );

  const submit = await fetch(`${url}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "llama3.2", prompt: "Write a haiku about queues.", metadata: { check: "image" } }),
  });
  const job = await json(submit);
  const ended = await json(await fetch(`${url}${submit.headers.get("location")}?wait=30`));
  check("POST /jobs is accepted and done", submit.status === 202 && ended.state === "done", `${job.id} ${ended.state}`);

  const gatewayHealth = runNode("packages/gateway/dist/healthcheck.js", env);
  check("the gateway's health check passes", gatewayHealth.code === 0, gatewayHealth.out);
  const workerHealth = runNode("packages/worker/dist/healthcheck.js", env);
  check("the worker's health check passes", workerHealth.code === 0, workerHealth.out);
  if (fs.existsSync(path.join(tree, "bin/foreman"))) {
    const cli = spawnSync(path.join(tree, "bin/foreman"), ["status"], { env, encoding: "utf8", timeout: 20_000 });
    check("bin/foreman status answers", cli.status === 0, `${cli.stdout}${cli.stderr}`.trim().split("\n")[0]);
  }

  for (const p of [gateway, worker]) p.child.kill("SIGTERM");
  const [g, w] = await Promise.all([gateway.exited, worker.exited]);
  check(
    "SIGTERM stops both cleanly",
    g.code === 0 && w.code === 0 && [gateway, worker].every((p) => p.lines.some((l) => l.includes("stopped cleanly"))),
    `gateway exit ${g.code ?? g.signal}, worker exit ${w.code ?? w.signal}`,
  );
  const down = runNode("packages/gateway/dist/healthcheck.js", env);
  check("the gateway's health check fails once it is gone", down.code === 1, down.out);
  sim.child.kill("SIGTERM");
  await sim.exited;
}

let status = 0;
try {
  if (treeArg) check("checking the given tree", fs.existsSync(tree), tree);
  else build();
  checkContents();
  await checkRuns();
  const { mb, files } = duMegabytes(tree);
  console.log(`image tree: ${mb} MB in ${files} files at ${tree}`);
} catch (err) {
  check("the image tree check ran to its end", false, err.stack ?? String(err));
} finally {
  for (const p of children) p.child.kill("SIGKILL");
  await Promise.all([...children].map((p) => p.exited));
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(`image tree checks: ${results.length - failed} passed, ${failed} failed`);
  status = failed ? 1 : 0;
}
process.exit(status);
