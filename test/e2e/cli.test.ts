import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { jobView, sse, startFakeOpsServer } from "../../packages/cli/test/fake-ops-server.js";
import { ForemanClient, type Job } from "../../packages/client/src/index.js";
import { DEFAULT_MODELS, type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { retainNativeHandles } from "../../packages/shared/src/store/database.js";
import { openDb } from "./db.js";
import { type Foreman, foreman, freePort, ROOT, stopAll, tempDataDir } from "./harness.js";
import { startReceiver } from "./webhook-receiver.js";

const CLI = path.join(ROOT, "packages/cli/dist/main.js");
const TOKEN = "cli-e2e-api-token-0123456789";
const OLLAMA_TOKEN = "cli-e2e-ollama-token-0123456789";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EMBED = "nomic-embed-text";

/** Everything every CLI run printed, so the last test can check that no token ever appeared. */
const printed: string[] = [];

/** The built CLI as a child process, with only the environment given (and PATH). */
class CliProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(args: string[], env: Record<string, string>, options: { cwd?: string } = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, ...env },
      cwd: options.cwd ?? ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => this.took(() => (this.stdout += d)));
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => this.took(() => (this.stderr += d)));
    this.exited = new Promise((resolve) =>
      this.child.on("close", (code) => {
        printed.push(this.stdout, this.stderr);
        resolve(code);
      }),
    );
  }

  private took(append: () => void) {
    append();
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once the output satisfies `test`; rejects when the process ends without it. */
  async until(test: (self: CliProcess) => boolean): Promise<void> {
    let ended = false;
    void this.exited.then(() => {
      ended = true;
      for (const wake of this.waiters.splice(0)) wake();
    });
    while (!test(this)) {
      if (ended) throw new Error(`the CLI ended first.\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

function parseLogLine(line: string): Record<string, unknown> | null {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function cli(args: string[], env: Record<string, string>, options: { cwd?: string } = {}) {
  const p = new CliProcess(args, env, options);
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

describe("e2e: the foreman CLI", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;
  let client: ForemanClient;
  let env: Record<string, string>;
  const dirs: string[] = [];

  before(async () => {
    sim = await startSimulator({
      loadMs: 10,
      tokensPerSecond: 2000,
      token: OLLAMA_TOKEN,
      models: [...DEFAULT_MODELS, { name: "slow:latest", tokensPerSecond: 20 }],
    });
    f = await foreman({
      ollamaUrl: sim.url,
      env: { FOREMAN_API_TOKEN: TOKEN, FOREMAN_OLLAMA_TOKEN: OLLAMA_TOKEN, FOREMAN_WEBHOOK_SECRET: SECRET },
    });
    dirs.push(f.dataDir);
    await f.startGateway();
    await f.startWorker().waitForLog("active worker");
    client = new ForemanClient({ baseUrl: f.url, token: TOKEN });
    env = { FOREMAN_URL: f.url, FOREMAN_API_TOKEN: TOKEN };
  });
  after(async () => {
    await stopAll();
    await sim.close();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe("run", () => {
    it("streams the answer to stdout and its progress to stderr (exit 0)", async () => {
      const run = await cli(["run", "llama3.2", "Hello there", "-o", "num_predict=30"], env);
      expect(run.code, run.stderr).to.equal(0);
      const id = /job (\w{26}): queued/.exec(run.stderr)?.[1];
      expect(id, run.stderr).to.be.a("string");
      expect(run.stderr).to.include(`job ${id}: working`).and.include(`job ${id} done (`);
      const job = await client.get(id!);
      expect(job.state).to.equal("done");
      expect(job.metrics?.eval_count).to.equal(30);
      const text = (job.result as { message: { content: string } }).message.content;
      expect(run.stdout).to.equal(`${text}\n`);
    });

    it("--json prints the finished job; a prompt of - is read from stdin", async () => {
      const p = spawn(process.execPath, [CLI, "run", "qwen3:8b", "-", "--json", "-q"], {
        env: { PATH: process.env.PATH, ...env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      p.stdout.on("data", (d) => (out += d));
      p.stdin.end("a prompt from stdin");
      const code = await new Promise((resolve) => p.on("close", resolve));
      printed.push(out);
      expect(code).to.equal(0);
      const job = JSON.parse(out) as Job;
      expect(job).to.include({ state: "done", model: "qwen3:8b" });
    });

    it("exits 4 when the job fails, with the reason on stderr", async () => {
      const run = await cli(["run", "no-such-model", "hi"], env);
      expect(run.code).to.equal(4);
      expect(run.stderr).to.match(/foreman: job \w{26} failed: .*not found/);
      expect(run.stdout).to.equal("");
    });

    it("Ctrl-C cancels the job and exits 4 once it is canceled", async () => {
      const p = new CliProcess(["run", "slow", "tell a long story", "-o", "num_predict=5000"], env);
      // Answer text on stdout: the job is working (stderr says so on its own pipe).
      await p.until((self) => self.stdout.length > 0 && /: working\n/.test(self.stderr));
      const id = /job (\w{26}): working/.exec(p.stderr)![1]!;
      p.child.kill("SIGINT");
      expect(await p.exited).to.equal(4);
      expect(p.stderr).to.include(`canceling job ${id}`).and.include(`foreman: job ${id} canceled`);
      expect((await client.get(id)).state).to.equal("canceled");
    });
  });

  describe("jobs, job and cancel", () => {
    it("jobs lists newest first, filters by state and model, and pages by cursor or --all", async () => {
      const all = await client.list({ limit: 100 });
      const page1 = await cli(["jobs", "--limit", "1", "--json"], env);
      expect(page1.code).to.equal(0);
      const first = JSON.parse(page1.stdout) as { jobs: Job[]; next_cursor: string };
      expect(first.jobs.map((j) => j.id)).to.deep.equal([all.jobs[0]!.id]);
      const page2 = await cli(["jobs", "--limit", "1", "--cursor", first.next_cursor, "--json"], env);
      expect((JSON.parse(page2.stdout) as { jobs: Job[] }).jobs.map((j) => j.id)).to.deep.equal([all.jobs[1]!.id]);
      const everything = await cli(["jobs", "--all", "--limit", "2", "--json"], env);
      const listed = JSON.parse(everything.stdout) as { jobs: Job[]; next_cursor: null };
      expect(listed.jobs.map((j) => j.id)).to.deep.equal(all.jobs.map((j) => j.id));
      expect(listed.next_cursor).to.equal(null);
      const failed = await cli(["jobs", "--state", "failed", "--model", "no-such-model", "--json"], env);
      const failedJobs = (JSON.parse(failed.stdout) as { jobs: Job[] }).jobs;
      expect(failedJobs).to.have.length.greaterThan(0);
      expect(failedJobs.every((j) => j.state === "failed" && j.model === "no-such-model:latest")).to.equal(true);

      const table = await cli(["jobs", "--limit", "1"], env);
      expect(table.code).to.equal(0);
      expect(table.stdout.split("\n")[0]).to.match(/^ID +MODEL +STATE +KIND +CREATED +WAITED +RAN +NOTE$/);
      expect(table.stdout).to.include(all.jobs[0]!.id);
      expect(table.stderr).to.match(/^more: foreman jobs --limit 1 --cursor \S+\n$/);
    });

    it("job shows one job with its webhook deliveries (and history when the gateway reports it)", async () => {
      const receiver = await startReceiver(SECRET);
      try {
        const job = await client.submit({
          model: "llama3.2",
          prompt: "webhooks",
          metadata: { ticket: 7 },
          webhook: { url: receiver.url },
        });
        // The worker marks the last event delivered (and logs it) once the receiver has answered.
        await f.worker!.waitForLine((line) => {
          const entry = parseLogLine(line);
          return entry?.message === "webhook delivered" && entry.job_id === job.id && entry.event === "job.done";
        }, 15_000);
        const human = await cli(["job", job.id], env);
        expect(human.code).to.equal(0);
        expect(human.stdout).to.match(new RegExp(`^id +${job.id}$`, "m"));
        expect(human.stdout).to.match(/^state +done$/m);
        expect(human.stdout).to.match(/^metadata +\{"ticket":7\}$/m);
        expect(human.stdout).to.match(/^ +transcript\.ndjson +application\/x-ndjson/m);
        expect(human.stdout).to.match(/^history( +not reported by this gateway)?$/m);
        expect(human.stdout).to.include(`webhook   ${receiver.url} (all events)`);
        for (const type of ["job.queued", "job.loading", "job.working", "job.done"]) {
          expect(human.stdout).to.match(
            new RegExp(`^ +${type.replace(".", "\\.")} +delivered +1 +204 +delivered `, "m"),
          );
        }
        const json = await cli(["job", job.id, "--json"], env);
        const parsed = JSON.parse(json.stdout) as Job;
        expect(parsed).to.include({ id: job.id, state: "done" });
        expect(parsed.webhook?.deliveries).to.have.length(4);
      } finally {
        await receiver.close();
      }
      const missing = await cli(["job", "01JNOSUCHJOB00000000000000"], env);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.include("not found");
    });

    it("cancel stops a queued job at once and a working one with --wait; an ended job is exit 1", async () => {
      const working = await client.submit({ model: "slow", prompt: "long", options: { num_predict: 5000 } });
      const queued = await client.submit({ model: "slow", prompt: "behind it", options: { num_predict: 5000 } });
      const first = await cli(["cancel", queued.id], env);
      expect(first.code, first.stderr).to.equal(0);
      expect(first.stdout).to.equal(`job ${queued.id} canceled\n`);
      const again = await cli(["cancel", queued.id], env);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.include(`job ${queued.id} has already ended (canceled)`);
      const waited = await cli(["cancel", working.id, "--wait", "--json"], env);
      expect(waited.code, waited.stderr).to.equal(0);
      expect((JSON.parse(waited.stdout) as Job).state).to.equal("canceled");
      expect((await client.get(working.id)).state).to.equal("canceled");
      const unknown = await cli(["cancel", "01JNOSUCHJOB00000000000000"], env);
      expect(unknown.code).to.equal(1);
    });
  });

  describe("backup", () => {
    it("copies the database while gateway and worker run and jobs arrive, and the copy holds them", async () => {
      const out = tempDataDir();
      dirs.push(out);
      const submitting = Promise.all(
        Array.from({ length: 6 }, (_, i) => client.submit({ model: i % 2 ? "qwen3:8b" : "llama3.2", prompt: `b${i}` })),
      );
      const before = openDb(f.dataDir).count();
      const run = await cli(["backup", path.join(out, "foreman-copy.db"), "--json"], { FOREMAN_DATA_DIR: f.dataDir });
      await submitting;
      expect(run.code, run.stderr).to.equal(0);
      const report = JSON.parse(run.stdout) as { path: string; bytes: number; integrity: string; jobs: number };
      expect(report.integrity).to.equal("ok");
      expect(report.bytes).to.equal(fs.statSync(report.path).size);
      const copy = retainNativeHandles(new Database(report.path, { readonly: true, fileMustExist: true }));
      const { n } = copy.prepare("SELECT COUNT(*) AS n FROM jobs").get() as { n: number };
      copy.close();
      expect(n).to.equal(report.jobs);
      expect(n).to.be.at.least(before);
      expect(n).to.be.at.most(openDb(f.dataDir).count());
      // Relative to the working directory, like the gateway's own FOREMAN_DATA_DIR.
      const human = await cli(
        ["backup", "again.db"],
        { FOREMAN_DATA_DIR: path.relative(out, f.dataDir) },
        { cwd: out },
      );
      expect(human.code, human.stderr).to.equal(0);
      expect(human.stdout).to.match(
        /^backed up .*foreman\.db to .*again\.db: [\d.]+ kB \(\d+ bytes\), integrity ok, \d+ jobs, in /,
      );
    });
  });

  describe("models", () => {
    it("pull shows the target's progress per model, the embedder included (exit 0)", async () => {
      const target = await startSimulator({ pullMs: 300, token: OLLAMA_TOKEN });
      try {
        const run = await cli(["models", "pull", "gemma3:4b"], {
          FOREMAN_OLLAMA_URL: target.url,
          FOREMAN_OLLAMA_TOKEN: OLLAMA_TOKEN,
          FOREMAN_EMBED_MODEL: EMBED,
        });
        expect(run.code, run.stderr).to.equal(0);
        expect(run.stdout).to.match(/^gemma3:4b: pulled \(3\.3 GB, .+\)\nnomic-embed-text: pulled \(274 MB, .+\)\n$/);
        const lines = run.stderr.trimEnd().split("\n");
        const progress = lines.filter((l) => /^gemma3:4b: pulling [0-9a-f]{12} +\d+% /.test(l));
        expect(progress.length).to.be.at.least(5);
        expect(progress.at(-1)).to.match(/ 100% +3\.3 GB\/3\.3 GB +.+\/s +0:00 left$/);
        expect(lines).to.include("gemma3:4b: success").and.include("nomic-embed-text: success");
        expect(target.stats().requests.byRoute["POST /api/pull"]).to.equal(2);
      } finally {
        await target.close();
      }
    });

    it("check fails against one model slot with the advice, and passes with two", async () => {
      for (const slots of [1, 2]) {
        const target = await startSimulator({ maxLoadedModels: slots, loadMs: 5, token: OLLAMA_TOKEN });
        try {
          const run = await cli(["models", "check"], {
            FOREMAN_OLLAMA_URL: target.url,
            FOREMAN_OLLAMA_TOKEN: OLLAMA_TOKEN,
            FOREMAN_EMBED_MODEL: EMBED,
          });
          if (slots === 1) {
            expect(run.code).to.equal(1);
            expect(run.stdout).to.include("evicted the embedder");
            for (const advice of [
              "OLLAMA_MAX_LOADED_MODELS=2",
              "launchctl setenv OLLAMA_MAX_LOADED_MODELS 2",
              "sudo systemctl edit ollama.service",
              "[Service]",
              'Environment="OLLAMA_MAX_LOADED_MODELS=2"',
              "systemctl daemon-reload && sudo systemctl restart ollama",
              "OLLAMA_HOST=0.0.0.0:11434",
            ]) {
              expect(run.stdout).to.include(advice);
            }
          } else {
            expect(run.code, run.stdout + run.stderr).to.equal(0);
            expect(run.stdout).to.include("the embedder is still resident after the switch");
            expect(target.stats().loads.byModel).to.include({ "nomic-embed-text:latest": 1 });
          }
        } finally {
          await target.close();
        }
      }
    });

    it("lists the target's models and what is resident", async () => {
      const run = await cli(["models"], { FOREMAN_OLLAMA_URL: sim.url, FOREMAN_OLLAMA_TOKEN: OLLAMA_TOKEN });
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/^slow:latest +/m);
    });
  });

  describe("status, tail and job history against the real gateway", () => {
    it("status shows the target, the worker and the queue; --json is the status route's answer", async () => {
      const text = await cli(["status"], env);
      expect(text.code, text.stderr).to.equal(0);
      expect(text.stdout)
        .to.match(/target/i)
        .and.match(/worker/i)
        .and.match(/queue/i);
      const json = await cli(["status", "--json"], env);
      expect(json.code).to.equal(0);
      const status = JSON.parse(json.stdout);
      expect(status.target).to.include({ reachable: true, url: sim.url });
      expect(status.worker).to.include({ active: true });
    });

    it("tail prints each transition of a job as it happens, then stops on Ctrl-C (exit 0)", async () => {
      const tail = new CliProcess(["tail"], env);
      // The stream is open once the gateway has answered its headers; a job created after that is seen whole.
      await tail.until((self) => self.stderr.includes("following events"));
      const job = await client.submit({ model: "llama3.2", prompt: "tail me" });
      await tail.until((self) => new RegExp(`${job.id}.*done`).test(self.stdout));
      tail.child.kill("SIGINT");
      expect(await tail.exited).to.equal(0);
      const states = tail.stdout
        .split("\n")
        .filter((l) => l.includes(job.id))
        .map((l) => /\b(queued|loading|working|done)\b/.exec(l)?.[1]);
      expect(states).to.deep.equal(["queued", "loading", "working", "done"]);
    });

    it("job shows the job's history", async () => {
      const job = await client.submit({ model: "llama3.2", prompt: "history" });
      await client.wait(job.id);
      const shown = await cli(["job", job.id], env);
      expect(shown.code, shown.stderr).to.equal(0);
      expect(shown.stdout)
        .to.match(/queued/)
        .and.match(/loading/)
        .and.match(/working/)
        .and.match(/done/);
      expect(shown.stdout).to.not.include("not reported by this gateway");
    });
  });

  describe("status and tail (against a stand-in for the operations routes)", () => {
    it("status --json prints the route's answer; tail prints a transition and stops on Ctrl-C (exit 0)", async () => {
      const ops = await startFakeOpsServer({ token: TOKEN });
      try {
        const opsEnv = { FOREMAN_URL: ops.url, FOREMAN_API_TOKEN: TOKEN };
        const status = await cli(["status", "--json"], opsEnv);
        expect(status.code).to.equal(0);
        expect(JSON.parse(status.stdout).queue.depth).to.equal(3);
        const tail = new CliProcess(["tail"], opsEnv);
        const stream = await ops.eventStream(1);
        stream.write(
          sse({ id: 1, event: "job.working", data: jobView({ id: "01JTAILE2E0000000000000000", state: "working" }) }),
        );
        await tail.until((self) => self.stdout.includes("01JTAILE2E0000000000000000"));
        tail.child.kill("SIGINT");
        expect(await tail.exited).to.equal(0);
        expect(tail.stdout).to.match(/01JTAILE2E0000000000000000 {2}llama3\.2:latest +working/);
      } finally {
        await ops.close();
      }
    });
  });

  describe("exit codes", () => {
    it("3 when foreman or the target cannot be reached, 2 for a usage error, 1 for a wrong token", async () => {
      const port = await freePort();
      const jobs = await cli(["jobs"], { FOREMAN_URL: `http://127.0.0.1:${port}` });
      expect(jobs.code).to.equal(3);
      expect(jobs.stderr).to.include(`cannot reach foreman at http://127.0.0.1:${port}`);
      const models = await cli(["models"], { FOREMAN_OLLAMA_URL: `http://127.0.0.1:${port}` });
      expect(models.code).to.equal(3);
      expect(models.stderr).to.include("OLLAMA_HOST=0.0.0.0:11434");
      expect((await cli(["frobnicate"], env)).code).to.equal(2);
      expect((await cli(["jobs", "--state", "sleeping"], env)).code).to.equal(2);
      expect((await cli(["--help"], env)).code).to.equal(0);
      const wrong = await cli(["jobs"], { FOREMAN_URL: f.url, FOREMAN_API_TOKEN: "a-wrong-token-0123456789" });
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.include("401").and.include("FOREMAN_API_TOKEN is not the token");
    });

    it("no token appeared in anything the CLI printed", () => {
      expect(printed.length).to.be.greaterThan(20);
      for (const text of printed) {
        expect(text).to.not.include(TOKEN).and.not.include(OLLAMA_TOKEN).and.not.include("a-wrong-token-0123456789");
      }
    });
  });
});
