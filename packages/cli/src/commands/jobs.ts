import { JOB_STATES, type Job, type JobState } from "@foreman/client";
import { type Command, Option } from "commander";
import { type CommandKit, integerIn, type JsonOption, printJson, withJson } from "../command-kit.js";
import { EXIT } from "../exit-codes.js";
import { connectForeman } from "../foreman.js";
import { formatAgo } from "../format.js";
import { formatMs, jobNote, ranMs, waitedMs } from "../job-summary.js";
import { formatTable } from "../table.js";

interface JobsOptions extends JsonOption {
  state?: JobState;
  model?: string;
  limit?: number;
  cursor?: string;
  all?: boolean;
}

/** `foreman jobs`: one page of `GET /jobs` (or every page with --all), newest first. */
export function registerJobs(program: Command, kit: CommandKit): void {
  withJson(program.command("jobs"))
    .description("list jobs, newest first")
    .addOption(new Option("--state <state>", "only jobs in this state").choices(JOB_STATES))
    .option("--model <name>", "only jobs of this model")
    .option("--limit <n>", "jobs per page, 1 to 100 (default 20)", integerIn(1, 100))
    .option("--cursor <cursor>", "the page after this cursor (printed below a page that has more)")
    .option("--all", "follow the cursors and list every matching job")
    .action(
      kit.act(async (options: JobsOptions) => {
        const { io } = kit;
        const { client } = connectForeman(io);
        const filter = { state: options.state, model: options.model, limit: options.limit, cursor: options.cursor };
        let jobs: Job[];
        let nextCursor: string | null = null;
        if (options.all) {
          jobs = [];
          for await (const job of client.listAll(filter)) jobs.push(job);
        } else {
          ({ jobs, nextCursor } = await client.list(filter));
        }
        if (options.json) {
          printJson(io, { jobs, next_cursor: nextCursor });
          return EXIT.ok;
        }
        io.stdout.write(jobs.length === 0 ? "no jobs\n" : `${renderJobs(jobs, io.now())}\n`);
        if (nextCursor) io.stderr.write(`more: foreman jobs ${nextPageArgs(options, nextCursor)}\n`);
        return EXIT.ok;
      }),
    );
}

export function renderJobs(jobs: Job[], now: number): string {
  return formatTable(
    [
      { header: "id" },
      { header: "model", maxWidth: 32 },
      { header: "state" },
      { header: "kind" },
      { header: "created" },
      { header: "waited", align: "right" },
      { header: "ran", align: "right" },
      { header: "note", maxWidth: 60 },
    ],
    jobs.map((job) => [
      job.id,
      job.model,
      job.state,
      job.kind,
      formatAgo(job.created_at, now),
      formatMs(waitedMs(job, now)),
      formatMs(ranMs(job, now)),
      jobNote(job),
    ]),
  );
}

function nextPageArgs(options: JobsOptions, cursor: string): string {
  const args: string[] = [];
  if (options.state) args.push(`--state ${options.state}`);
  if (options.model) args.push(`--model ${shellWord(options.model)}`);
  if (options.limit) args.push(`--limit ${options.limit}`);
  args.push(`--cursor ${cursor}`);
  return args.join(" ");
}

function shellWord(text: string): string {
  return /^[\w.:/@-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
