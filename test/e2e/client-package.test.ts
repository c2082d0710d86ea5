import { execFile } from "node:child_process";
import fs from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import * as esbuild from "esbuild";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { makeTempDir } from "../temp-dirs.js";
import { type Foreman, foreman, ROOT, stopAll } from "./harness.js";

const run = promisify(execFile);
const CLIENT_DIR = path.join(ROOT, "packages/client");
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");

/** What a new user does: `npm install` of the packed tarball into an empty project, then a script. */
const SCRIPT = `import { ForemanClient, verifyWebhook } from "@foreman/client";

const client = new ForemanClient({ baseUrl: process.env.FOREMAN_URL, token: process.env.FOREMAN_API_TOKEN });
let text = "";
let jobId = "";
for await (const chunk of client.chatStream("llama3.2", [{ role: "user", content: "hello from a tarball" }], {
  onJob: (job) => { jobId = job.id; },
})) {
  text += chunk.message.content;
}
const { text: generated } = await client.generate("qwen3:8b", "and a generate");
const page = await client.list({ limit: 5 });
console.log(JSON.stringify({ jobId, text, generated, listed: page.jobs.map((j) => j.id), verify: typeof verifyWebhook }));
`;

/** The same calls, typechecked against the declarations the tarball ships. */
const TYPED = `import { ForemanClient, type Job, type WebhookEvent, webhookMiddleware } from "@foreman/client";

const client = new ForemanClient({ baseUrl: "http://127.0.0.1:11435" });
export async function check(signal: AbortSignal): Promise<string> {
  let text = "";
  for await (const chunk of client.chatStream("llama3.2", [{ role: "user", content: "x" }], { signal })) {
    text += chunk.message.content;
  }
  for await (const page of client.list({ state: "done", signal })) text += page.jobs.length;
  const job: Job = await client.get("id", { signal });
  const handler: (event: WebhookEvent) => string = (event) => event.data.state;
  void webhookMiddleware("whsec_x");
  return text + job.state + handler;
}
`;

/** An esbuild plugin that records every import of a Node built-in instead of resolving it. */
function refuseNodeBuiltins(found: string[]): esbuild.Plugin {
  const builtins = new Set(builtinModules);
  return {
    name: "refuse-node-builtins",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.replace(/^node:/, "").split("/")[0]!;
        if (args.path.startsWith("node:") || builtins.has(bare)) {
          found.push(`${args.path} (imported by ${path.relative(ROOT, args.importer)})`);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
}

async function bundleForBrowser(entry: string): Promise<{ builtins: string[]; code: string }> {
  const builtins: string[] = [];
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    logLevel: "silent",
    plugins: [refuseNodeBuiltins(builtins)],
  });
  return { builtins, code: result.outputFiles[0]!.text };
}

describe("e2e: @foreman/client as a user installs it", function () {
  this.timeout(120_000);
  let sim: Simulator;
  let f: Foreman;
  let project: string;
  let installed: string;

  before(async () => {
    const packDir = makeTempDir("foreman-pack-");
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", packDir], { cwd: CLIENT_DIR });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed!.files.map((file) => file.path);
    expect(files).to.include.members(["package.json", "README.md", "dist/index.js", "dist/index.d.ts"]);
    expect(files.filter((file) => file.startsWith("test/"))).to.deep.equal([]);

    project = makeTempDir("foreman-user-");
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "user", private: true, type: "module" }),
    );
    // The package has no dependencies: the install needs no registry.
    await run(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--offline",
        "--cache",
        path.join(project, ".npm-cache"),
        path.join(packDir, packed!.filename),
      ],
      { cwd: project },
    );
    installed = path.join(project, "node_modules/@foreman/client");

    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 3000 });
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_API_TOKEN: "pack-test-token-0123456789" } });
    await f.startGateway();
    await f.startWorker().waitForLog("active worker");
  });
  after(async () => {
    await stopAll();
    await sim?.close();
  });

  it("the installed package runs a script against a real gateway", async () => {
    fs.writeFileSync(path.join(project, "try.mjs"), SCRIPT);
    const { stdout } = await run(process.execPath, ["try.mjs"], {
      cwd: project,
      env: { PATH: process.env.PATH, FOREMAN_URL: f.url, FOREMAN_API_TOKEN: "pack-test-token-0123456789" },
    });
    const out = JSON.parse(stdout) as {
      jobId: string;
      text: string;
      generated: string;
      listed: string[];
      verify: string;
    };
    expect(out.text.length).to.be.greaterThan(0);
    expect(out.generated.length).to.be.greaterThan(0);
    expect(out.listed).to.include(out.jobId);
    expect(out.verify).to.equal("function");
  });

  it("its declarations typecheck a user's TypeScript with no Node types", async () => {
    fs.writeFileSync(path.join(project, "typed.ts"), TYPED);
    const compilerOptions = {
      noEmit: true,
      strict: true,
      module: "nodenext",
      moduleResolution: "nodenext",
      target: "es2022",
      lib: ["es2023", "dom", "dom.iterable"],
      types: [],
      skipLibCheck: true,
    };
    fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["typed.ts"] }));
    const checked = await run(process.execPath, [TSC, "-p", "."], { cwd: project }).catch(
      (error: { stdout: string }) => error,
    );
    expect(checked.stdout).to.equal("");
  });

  it("it bundles for the browser without a single Node built-in", async () => {
    const { builtins, code } = await bundleForBrowser(path.join(installed, "dist/index.js"));
    expect(builtins).to.deep.equal([]);
    expect(code).to.include("webhook-signature");
    // The check itself catches a built-in: a module that imports one is reported.
    const leaky = path.join(project, "leaky.mjs");
    fs.writeFileSync(
      leaky,
      'import { readFileSync } from "node:fs";\nimport "@foreman/client";\nexport { readFileSync };\n',
    );
    expect((await bundleForBrowser(leaky)).builtins).to.deep.equal([
      "node:fs (imported by " + path.relative(ROOT, leaky) + ")",
    ]);
  });
});
