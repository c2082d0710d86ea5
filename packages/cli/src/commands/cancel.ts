import { ForemanHttpError, isTerminalState, type Job } from "@foreman/client";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { CliError, EXIT } from "../exit-codes.js";
import { connectForeman } from "../foreman.js";

interface CancelOptions extends JsonOption {
  wait?: boolean;
}

/** `foreman cancel <id>`: POST /jobs/<id>/cancel; an ended job is a failure (exit 1). */
export function registerCancel(program: Command, kit: CommandKit): void {
  withJson(program.command("cancel"))
    .description("cancel a queued, loading or working job")
    .argument("<id>", "the job id")
    .option("--wait", "wait until the worker has stopped the job")
    .action(
      kit.act(async (id: string, options: CancelOptions) => {
        const { io } = kit;
        const { client } = connectForeman(io);
        let job: Job;
        try {
          job = await client.cancel(id);
        } catch (error) {
          if (error instanceof ForemanHttpError && error.status === 409) {
            throw new CliError(error.error || `job ${id} has already ended`);
          }
          throw error;
        }
        if (options.wait && !isTerminalState(job.state)) job = await client.wait(job.id);
        if (options.json) printJson(io, job);
        else io.stdout.write(`${describeCancel(job)}\n`);
        // Raced to the end: the job finished before the worker could stop it.
        return job.state === "done" ? EXIT.failure : EXIT.ok;
      }),
    );
}

function describeCancel(job: Job): string {
  if (job.state === "canceled") return `job ${job.id} canceled`;
  if (job.state === "done" || job.state === "failed")
    return `job ${job.id} ended ${job.state} before it could be canceled`;
  return `job ${job.id} is ${job.state}: cancel requested, the worker is stopping it (foreman job ${job.id})`;
}
