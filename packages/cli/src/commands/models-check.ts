import { sameModel } from "@foreman/shared/model-name";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { CliError, EXIT, UsageError } from "../exit-codes.js";
import { HttpStatusError } from "../http.js";
import type { CliIo } from "../io.js";
import { styleFor } from "../style.js";
import { connectTarget, type Target } from "../target.js";
import { twoSlotAdvice } from "../two-slot-advice.js";

interface CheckOptions extends JsonOption {
  embed?: string;
}

interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

/** Why the check failed decides the advice: a missing model is pulled, a lost slot is configured. */
type Advice = "slots" | null;

class CheckFailed extends Error {
  constructor(
    message: string,
    readonly advice: Advice,
  ) {
    super(message);
  }
}

/**
 * `foreman models check [worker…]`: proves the two-slot setup on the target, the way the worker uses it.
 * The embedder is loaded pinned, a worker model next to it, and both must be resident together; then the
 * worker model is switched (the first unloaded, a second loaded) and the embedder must still be resident.
 */
export function registerModelsCheck(models: Command, kit: CommandKit): void {
  withJson(models.command("check"))
    .description("check that the target keeps the embedder resident next to a worker model, across a switch")
    .argument("[worker-models...]", "two worker models to switch between (default: the first two on the target)")
    .option("--embed <name>", "the embedder (default: FOREMAN_EMBED_MODEL)")
    .action(
      kit.act(async (names: string[], options: CheckOptions) => {
        const { io } = kit;
        const target = connectTarget(io);
        const embedder = options.embed ?? target.env.embedModel;
        if (!embedder) throw new UsageError("name the embedder: set FOREMAN_EMBED_MODEL or pass --embed <name>");
        if (names.length > 2) throw new UsageError("name at most two worker models");
        return await check(io, target, embedder, names, options);
      }),
    );
}

async function check(io: CliIo, target: Target, embedder: string, names: string[], options: CheckOptions) {
  const style = styleFor(io.stdout, io.env);
  const steps: Step[] = [];
  const say = (text: string) => {
    if (!options.json) io.stdout.write(`${text}\n`);
  };
  const pass = (step: string, detail: string) => {
    steps.push({ step, ok: true, detail });
    say(`${style.green("✓")} ${detail}`);
  };
  const version = await target.version().then(
    (v) => v.version,
    () => null,
  );
  const tags = await target.tags();
  say(`target   ${target.env.baseUrl}${version ? ` (Ollama ${version})` : ""}`);

  let workers: string[] = [];
  let advice: Advice = null;
  let loadedWorker: string | null = null;
  try {
    const available = tags.models.map((m) => m.name);
    if (!available.some((name) => sameModel(name, embedder))) {
      throw new CheckFailed(`the embedder ${embedder} is not on the target: foreman models pull ${embedder}`, null);
    }
    workers = await pickWorkerModels(target, available, names, embedder);
    say(`embedder ${embedder} · worker models ${workers.join(", ")}`);
    const [first, second] = workers as [string, string];

    await step(() => target.loadEmbedder(embedder), `loading the embedder ${embedder}`);
    pass("load-embedder", `loaded the embedder ${embedder}, pinned (keep_alive -1)`);
    await step(() => target.load(first), `loading ${first}`);
    loadedWorker = first;
    pass("load-worker", `loaded the worker model ${first}`);

    let resident = await residentModels(target);
    if (!resident.some((m) => sameModel(m, embedder))) {
      throw new CheckFailed(
        `loading ${first} evicted the embedder: /api/ps shows only ${list(resident)}. The target keeps one model loaded.`,
        "slots",
      );
    }
    if (!resident.some((m) => sameModel(m, first))) {
      throw new CheckFailed(`${first} is not resident after loading it: /api/ps shows ${list(resident)}`, "slots");
    }
    pass("both-resident", `both resident together: ${list(resident)}`);

    await step(() => target.unload(first), `unloading ${first}`);
    loadedWorker = null;
    pass("unload-worker", `unloaded ${first} (keep_alive 0), as the worker does before a switch`);
    await step(() => target.load(second), `loading ${second}`);
    loadedWorker = second;
    pass("switch-worker", `loaded the worker model ${second}`);

    resident = await residentModels(target);
    if (!resident.some((m) => sameModel(m, embedder))) {
      throw new CheckFailed(
        `after switching to ${second} the embedder is gone: /api/ps shows ${list(resident)}`,
        "slots",
      );
    }
    pass("embedder-kept", `the embedder is still resident after the switch: ${list(resident)}`);
  } catch (error) {
    if (!(error instanceof CheckFailed)) throw error;
    advice = error.advice;
    steps.push({ step: "failed", ok: false, detail: error.message });
    say(`${style.red("✗")} ${error.message}`);
  } finally {
    // Leave the target as the worker expects it: the embedder pinned, no worker model held by this check.
    if (loadedWorker !== null) await target.unload(loadedWorker).catch(() => undefined);
  }

  const ok = steps.every((s) => s.ok);
  if (options.json) {
    printJson(io, {
      ok,
      target: target.env.baseUrl,
      version,
      embedder,
      worker_models: workers,
      steps,
      advice: advice === "slots" ? twoSlotAdvice() : null,
    });
  } else if (ok) {
    say("the two-slot setup works: the embedder stays resident while worker models switch");
  } else if (advice === "slots") {
    say(`\n${twoSlotAdvice()}`);
  }
  return ok ? EXIT.ok : EXIT.failure;
}

/** Runs one request of the check; an error answer (a model that cannot load) fails the check, not the CLI. */
async function step(run: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (error instanceof HttpStatusError && error.status !== 401 && error.status !== 403) {
      throw new CheckFailed(`${what} failed: ${error.error}`, null);
    }
    throw error;
  }
}

async function residentModels(target: Target): Promise<string[]> {
  return (await target.ps()).models.map((m) => m.name);
}

/** The named worker models, filled up to two with the target's first models that are not embedders. */
async function pickWorkerModels(target: Target, available: string[], names: string[], embedder: string) {
  for (const name of names) {
    if (!available.some((m) => sameModel(m, name))) {
      throw new CheckFailed(`${name} is not on the target: foreman models pull ${name}`, null);
    }
    if (sameModel(name, embedder)) throw new UsageError(`${name} is the embedder: name worker models`);
  }
  const picked = [...names];
  for (const name of available) {
    if (picked.length >= 2) break;
    if (sameModel(name, embedder) || picked.some((p) => sameModel(p, name))) continue;
    if (await isEmbeddingModel(target, name)) continue;
    picked.push(name);
  }
  if (picked.length < 2) {
    throw new CliError(
      `the check switches between two worker models, and the target has ${picked.length === 0 ? "none" : `only ${picked[0]}`} besides embedders: pull another (foreman models pull <name>)`,
    );
  }
  return picked;
}

/** From the model's capabilities when the target reports them, else from its name and family. */
async function isEmbeddingModel(target: Target, name: string): Promise<boolean> {
  try {
    const show = await target.show(name);
    if (show.capabilities && show.capabilities.length > 0) {
      return show.capabilities.includes("embedding") && !show.capabilities.includes("completion");
    }
    return /embed/i.test(name) || /bert/i.test(show.details?.family ?? "");
  } catch (error) {
    if (error instanceof CliError && !(error instanceof HttpStatusError)) throw error;
    return /embed/i.test(name);
  }
}

function list(models: string[]): string {
  return models.length === 0 ? "nothing" : models.join(", ");
}
