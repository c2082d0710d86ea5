import { normalizeModelName } from "@foreman/shared/model-name";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { CliError, EXIT, UnreachableError, UsageError } from "../exit-codes.js";
import { HttpStatusError, networkDetail } from "../http.js";
import type { CliIo, OutputStream } from "../io.js";
import { PullProgress, plainLineDue, renderBar, renderDone, renderPlain } from "../pull-progress.js";
import { connectTarget, type Target } from "../target.js";

interface PullOptions extends JsonOption {
  quiet?: boolean;
}

interface PullResult {
  model: string;
  ok: boolean;
  bytes: number;
  seconds: number;
  error: string | null;
}

/** A terminal's bar is redrawn at most this often. */
const REDRAW_MS = 100;

/** `foreman models pull <name>…`: pulls on the target, FOREMAN_EMBED_MODEL included, with progress. */
export function registerModelsPull(models: Command, kit: CommandKit): void {
  withJson(models.command("pull"))
    .description("pull models on the target (and FOREMAN_EMBED_MODEL), with a progress bar per model")
    .argument("[names...]", "the models to pull, e.g. llama3.2 qwen3:8b")
    .option("-q, --quiet", "no progress on stderr")
    .action(
      kit.act(async (names: string[], options: PullOptions) => {
        const { io } = kit;
        const target = connectTarget(io);
        const wanted = uniqueModels([...names, ...(target.env.embedModel ? [target.env.embedModel] : [])]);
        if (wanted.length === 0) {
          throw new UsageError("name the models to pull (FOREMAN_EMBED_MODEL, pulled along, is not set either)");
        }
        const nameWidth = Math.max(...wanted.map((m) => m.length));
        const results: PullResult[] = [];
        for (const model of wanted) results.push(await pullOne(target, model, io, options, nameWidth));
        if (options.json) printJson(io, { target: target.env.baseUrl, models: results });
        return results.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
      }),
    );
}

async function pullOne(
  target: Target,
  model: string,
  io: CliIo,
  options: PullOptions,
  nameWidth: number,
): Promise<PullResult> {
  const progress = new PullProgress(model, io.now);
  const view = progressView(io.stderr, options.quiet === true, nameWidth);
  const result = (error: string | null): PullResult => ({
    model,
    ok: error === null,
    bytes: progress.total,
    seconds: Math.round(progress.elapsedMs) / 1000,
    error,
  });
  let error: string | null = null;
  try {
    for await (const line of target.pull(model)) {
      if ("error" in line) {
        error = line.error;
        break;
      }
      progress.update(line);
      view.update(progress);
    }
    if (error === null && progress.status !== "success") {
      error = `the pull ended without success (last status: ${progress.status || "none"})`;
    }
  } catch (thrown) {
    view.end();
    // A refused name or a missing manifest fails this model only; no token or no target fails them all.
    if (thrown instanceof HttpStatusError && thrown.status !== 401 && thrown.status !== 403) {
      return report(io, options, result(thrown.error), progress);
    }
    if (thrown instanceof CliError) throw thrown;
    throw new UnreachableError(`lost the connection to the target while pulling ${model}: ${networkDetail(thrown)}`);
  }
  view.end();
  return report(io, options, result(error), progress);
}

function report(io: CliIo, options: PullOptions, result: PullResult, progress: PullProgress): PullResult {
  if (!result.ok) io.stderr.write(`foreman: could not pull ${result.model}: ${result.error}\n`);
  else if (!options.json) io.stdout.write(`${renderDone(progress)}\n`);
  return result;
}

/** A bar redrawn in place on a terminal; plain lines (each status, each tenth) anywhere else. */
function progressView(stream: OutputStream, quiet: boolean, nameWidth: number) {
  let drawnAt = Number.NEGATIVE_INFINITY;
  let drawnStatus = "";
  let drawn = false;
  const plain = { status: "", tenth: -1 };
  return {
    update(progress: PullProgress): void {
      if (quiet) return;
      if (!stream.isTTY) {
        if (plainLineDue(progress, plain)) stream.write(`${renderPlain(progress)}\n`);
        return;
      }
      const now = Date.now();
      if (progress.status === drawnStatus && now - drawnAt < REDRAW_MS) return;
      drawnAt = now;
      drawnStatus = progress.status;
      stream.write(`\r\x1b[K${renderBar(progress, nameWidth)}`);
      drawn = true;
    },
    end(): void {
      if (drawn) stream.write("\r\x1b[K");
      drawn = false;
    },
  };
}

function uniqueModels(names: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const name of names) {
    const key = normalizeModelName(name.trim());
    if (name.trim() === "" || seen.has(key)) continue;
    seen.add(key);
    out.push(name.trim());
  }
  return out;
}
