import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { expect } from "chai";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const mainModule = fileURLToPath(new URL("../src/main.ts", import.meta.url));

/** Starts the CLI under tsx and resolves with the process and its first stdout line. */
function startCli(args: string[]): Promise<{ child: ChildProcess; firstLine: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", mainModule, ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const newline = out.indexOf("\n");
      if (newline >= 0) resolve({ child, firstLine: out.slice(0, newline) });
    });
    child.on("exit", (code) => reject(new Error(`exited with ${code}: ${err}`)));
  });
}

describe("main (CLI)", () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
  });

  it("prints its URL, serves, and exits cleanly on SIGTERM", async () => {
    const started = await startCli(["--port", "0", "--load-ms", "1", "--tps", "5000", "--token", "t"]);
    child = started.child;
    const match = /^ollama-sim listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(started.firstLine);
    expect(match, started.firstLine).to.not.equal(null);
    const url = (match as RegExpExecArray)[1] as string;
    expect(await (await fetch(url)).text()).to.equal("Ollama is running");
    expect((await fetch(`${url}/api/tags`)).status).to.equal(401);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await exited;
    expect(code).to.equal(0);
  });

  it("exits 2 with usage on a bad flag", async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", mainModule, "--port", "x"], {
      cwd: repoRoot,
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = proc;
    let err = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    const [code] = await once(proc, "exit");
    expect(code).to.equal(2);
    expect(err).to.contain("--port must be an integer");
    expect(err).to.contain("Usage: ollama-sim");
  });
});
