import { sameModel } from "@foreman/shared/model-name";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { EXIT } from "../exit-codes.js";
import { formatBytes } from "../format.js";
import { formatTable } from "../table.js";
import { connectTarget } from "../target.js";
import { registerModelsCheck } from "./models-check.js";
import { registerModelsPull } from "./models-pull.js";

/** /api/ps shows a pinned model (negative keep_alive) as expiring some 292 years ahead. */
const PINNED_AFTER_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * `foreman models`: the target's models and what is resident, talking to the target directly with the
 * worker's settings (FOREMAN_OLLAMA_URL, FOREMAN_OLLAMA_TOKEN, FOREMAN_EMBED_MODEL); `pull` and `check` below.
 */
export function registerModels(program: Command, kit: CommandKit): void {
  const models = withJson(program.command("models"))
    .description("the target's models and which are resident (talks to FOREMAN_OLLAMA_URL directly)")
    .action(
      kit.act(async (options: JsonOption) => {
        const { io } = kit;
        const target = connectTarget(io);
        const [tags, ps] = await Promise.all([target.tags(), target.ps()]);
        const now = io.now();
        const rows = tags.models.map((m) => {
          const loaded = ps.models.find((p) => sameModel(p.name, m.name));
          const expires = loaded ? Date.parse(loaded.expires_at) : Number.NaN;
          return {
            name: m.name,
            size: m.size,
            parameter_size: m.details?.parameter_size ?? null,
            quantization: m.details?.quantization_level ?? null,
            resident: loaded !== undefined,
            pinned: loaded !== undefined && expires - now > PINNED_AFTER_MS,
            expires_at: loaded?.expires_at ?? null,
            embedder: sameModel(m.name, target.env.embedModel),
          };
        });
        if (options.json) {
          printJson(io, { target: target.env.baseUrl, embedder: target.env.embedModel ?? null, models: rows });
          return EXIT.ok;
        }
        if (rows.length === 0)
          io.stdout.write(`the target (${target.env.baseUrl}) has no models: foreman models pull <name>\n`);
        else {
          const table = formatTable(
            [
              { header: "name" },
              { header: "size", align: "right" },
              { header: "params" },
              { header: "quant" },
              { header: "resident" },
              { header: "" },
            ],
            rows.map((r) => [
              r.name,
              formatBytes(r.size),
              r.parameter_size,
              r.quantization,
              r.pinned ? "pinned" : r.resident ? "loaded" : "",
              r.embedder ? "embedder" : "",
            ]),
          );
          io.stdout.write(`${table}\n`);
        }
        if (target.env.embedModel && !rows.some((r) => r.embedder)) {
          io.stderr.write(`the embedder ${target.env.embedModel} is not on the target: foreman models pull\n`);
        }
        return EXIT.ok;
      }),
    );
  registerModelsPull(models, kit);
  registerModelsCheck(models, kit);
}
