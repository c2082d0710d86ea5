import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { type ChatResponse, ForemanClient, type Job } from "../../packages/client/src/index.js";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { makeTempDir } from "../temp-dirs.js";
import { type Foreman, foreman, freePort, ROOT, stopAll } from "./harness.js";

const run = promisify(execFile);
const TOKEN = "examples-e2e-token-0123456789";

interface BatchResult {
  line: number;
  prompt: string;
  job_id: string;
  state: string;
  via: string;
  text: string | null;
}

/** The most jobs that existed unfinished at one moment, from their own timestamps. */
function mostAtOnce(jobs: Job[]): number {
  // At equal times an end counts before a start: a slot freed and reused in the same millisecond.
  const moments = jobs.flatMap((job) => [
    { at: Date.parse(job.created_at), step: 1 },
    { at: Date.parse(job.ended_at ?? ""), step: -1 },
  ]);
  moments.sort((a, b) => a.at - b.at || a.step - b.step);
  let current = 0;
  let most = 0;
  for (const moment of moments) {
    current += moment.step;
    most = Math.max(most, current);
  }
  return most;
}

describe("e2e: the examples run against a gateway, a worker and the simulator", function () {
  this.timeout(90_000);
  let sim: Simulator;
  let f: Foreman;
  let client: ForemanClient;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 2000 });
    // The examples' webhook receiver listens on loopback, which the harness allows.
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_API_TOKEN: TOKEN } });
    await f.startGateway();
    await f.startWorker().waitForLog("active worker");
    client = new ForemanClient({ baseUrl: f.url, token: TOKEN });
    env = {
      PATH: process.env.PATH,
      FOREMAN_URL: f.url,
      FOREMAN_API_TOKEN: TOKEN,
      BATCH_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    };
  });
  after(async () => {
    await stopAll();
    await sim?.close();
  });

  /** Runs an example as a child process; a failure shows its output. */
  const runExample = (args: string[]) =>
    run(process.execPath, args, { cwd: ROOT, env, timeout: 60_000 }).catch(
      (error: Error & { code?: unknown; stdout: string; stderr: string }) => {
        throw new Error(`${args[0]} exited with ${error.code}:\n${error.stdout}\n${error.stderr}`);
      },
    );

  it("batch.mjs: every prompt of the file once, at most --concurrency at a time, each end received by webhook", async () => {
    const dir = makeTempDir("foreman-batch-");
    const prompts = path.join(dir, "prompts.txt");
    const lines = [
      "# five questions",
      "What is a queue?",
      "",
      "Name a river.",
      "Why batch by model?",
      "Say hi.",
      "Count to 3.",
    ];
    fs.writeFileSync(prompts, `${lines.join("\n")}\n`);
    const out = path.join(dir, "results.jsonl");
    // A fixed receiver (port and secret), so the second run's jobs match the first run's.
    const port = String(await freePort());
    const batch = ["examples/batch.mjs", prompts, "--concurrency", "2", "--out", out, "--port", port];

    const first = await runExample(batch);
    const results = fs
      .readFileSync(out, "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as BatchResult);
    expect(results.map((r) => r.line)).to.deep.equal([2, 4, 5, 6, 7]);
    expect(results.every((r) => r.state === "done" && r.via === "webhook" && (r.text ?? "") !== "")).to.equal(true);
    expect(first.stdout).to.match(/summary: 5 prompts, 5 done, 0 failed, 0 canceled, 0 not submitted;/);
    expect(first.stdout).to.match(/5 ended by webhook/);

    const jobs: Job[] = [];
    for await (const job of client.listAll({ model: "llama3.2" })) jobs.push(job);
    expect(jobs.map((j) => j.id).sort()).to.deep.equal(results.map((r) => r.job_id).sort());
    for (const result of results) {
      const job = jobs.find((j) => j.id === result.job_id)!;
      expect(job.metadata).to.deep.equal({ line: result.line });
      expect(result.text).to.equal((job.result as ChatResponse).message.content);
    }
    expect(mostAtOnce(jobs)).to.be.at.most(2);

    // Run again on the same file: the same jobs, picked up by their idempotency keys, none queued twice.
    const again = await runExample(batch);
    expect(again.stdout).to.match(/5 done/);
    const rerun = fs
      .readFileSync(out, "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as BatchResult);
    expect(rerun.map((r) => r.job_id)).to.deep.equal(results.map((r) => r.job_id));
    expect(rerun.every((r) => r.via === "earlier run")).to.equal(true);
    const after = (await client.list({ model: "llama3.2", limit: 100 })).jobs;
    expect(after).to.have.length(5);
  });

  it("chat.mjs: streamText through the AI SDK provider writes the job's answer as it comes", async () => {
    const { stdout, stderr } = await runExample([
      "examples/chat.mjs",
      "--model",
      "gemma3:4b",
      "--max-tokens",
      "40",
      "Why is the sky blue?",
    ]);
    const jobId = /\[job (\w+): \d+ tokens in, 40 out\]/.exec(stderr)?.[1];
    expect(jobId, stderr).to.be.a("string");
    const job = await client.get(jobId!);
    expect(job.state).to.equal("done");
    expect(job.metadata).to.deep.equal({ from: "examples/chat.mjs" });
    expect(stdout.trimEnd()).to.equal((job.result as ChatResponse).message.content.trimEnd());
  });
});
