import fs from "node:fs";
import { Command, CommanderError } from "commander";
import type { CommandKit } from "./command-kit.js";
import { registerBackup } from "./commands/backup.js";
import { registerCancel } from "./commands/cancel.js";
import { registerJob } from "./commands/job.js";
import { registerJobs } from "./commands/jobs.js";
import { registerModels } from "./commands/models.js";
import { registerRun } from "./commands/run.js";
import { registerStatus } from "./commands/status.js";
import { registerTail } from "./commands/tail.js";
import { readForemanEnv, secretValues } from "./env.js";
import { describeFailure } from "./errors.js";
import { EXIT } from "./exit-codes.js";
import type { CliIo } from "./io.js";

const HELP_FOOTER = `
Environment:
  FOREMAN_URL           the gateway (default http://127.0.0.1:11435)
  FOREMAN_API_TOKEN     the gateway's token, when it has one
  FOREMAN_OLLAMA_URL    the target, for \`models\` (default http://127.0.0.1:11434)
  FOREMAN_OLLAMA_TOKEN  the target's token, when it has one
  FOREMAN_EMBED_MODEL   the always-resident embedder, for \`models\`
  FOREMAN_DB_PATH       the database, for \`backup\` (default $FOREMAN_DATA_DIR/foreman.db, data dir ./data)

Exit codes:
  0 ok · 1 the operation failed · 2 usage error · 3 foreman or the target cannot be reached
  4 \`run\`: the job failed or was canceled`;

/**
 * Runs one command line and resolves with its exit code. Nothing here exits the process or reads the
 * process's globals: `main.ts` passes them in, tests pass their own.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command("foreman")
    .description("Operate foreman: its status, jobs and live events, the target's models, and backups.")
    .version(packageVersion(), "-V, --version")
    .exitOverride()
    // `models check --json`: an option after a subcommand is the subcommand's, though `models` has one too.
    .enablePositionalOptions()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError("(foreman help <command> shows its options)")
    .addHelpText("after", HELP_FOOTER);
  const kit: CommandKit = {
    io,
    act:
      (action) =>
      async (...args) => {
        exitCode = await action(...args);
      },
  };
  registerStatus(program, kit);
  registerJobs(program, kit);
  registerJob(program, kit);
  registerCancel(program, kit);
  registerTail(program, kit);
  registerRun(program, kit);
  registerModels(program, kit);
  registerBackup(program, kit);

  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    // Help and --version "fail" with exit code 0; every other parse error is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const failure = describeFailure(error, failureContext(io));
    io.stderr.write(`foreman: ${failure.message}\n`);
    return failure.exitCode;
  }
}

function failureContext(io: CliIo) {
  const secrets = secretValues(io.env);
  try {
    const env = readForemanEnv(io.env);
    return { foremanUrl: env.baseUrl, tokenSet: env.token !== undefined, secrets };
  } catch {
    return { secrets };
  }
}

function packageVersion(): string {
  try {
    const file = new URL("../package.json", import.meta.url);
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}
