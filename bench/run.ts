import fs from "node:fs";
import path from "node:path";
import { benchEmbedProxy } from "./embed-proxy.js";
import { benchDrain, benchGeneration } from "./generation.js";
import { benchLargeDatabase, benchPostJobs } from "./jobs.js";
import { ROOT } from "./lib.js";
import { benchQueuePosition } from "./queue-position.js";

/** `pnpm bench`: runs every benchmark, prints the tables, and keeps the last output in bench-results/. */
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 5000);
const only = process.argv.slice(2);
type Section = { title: string; table: string; summary: string[] };
const benches: Array<[string, () => Promise<Section | Section[]>]> = [
  ["embed-proxy", () => benchEmbedProxy(durationMs)],
  ["generation", () => benchGeneration(Number(process.env.BENCH_ITERATIONS ?? 200))],
  ["drain", () => benchDrain()],
  ["post-jobs", () => benchPostJobs(durationMs)],
  ["large-db", () => benchLargeDatabase(Number(process.env.BENCH_JOBS ?? 1_000_000), 2000)],
  ["queue-position", () => benchQueuePosition(Number(process.env.BENCH_QUEUED_JOBS ?? 100_000), 1000)],
];

const out: string[] = [`# foreman benchmarks — ${new Date().toISOString()} — node ${process.version}`, ""];
for (const [name, run] of benches) {
  if (only.length > 0 && !only.includes(name)) continue;
  const results = await run();
  for (const result of Array.isArray(results) ? results : [results]) {
    const section = [`## ${result.title}`, "", result.table, "", ...result.summary.map((s) => `- ${s}`), ""];
    console.log(section.join("\n"));
    out.push(...section);
  }
}
fs.mkdirSync(path.join(ROOT, "bench-results"), { recursive: true });
fs.writeFileSync(path.join(ROOT, "bench-results", "latest.md"), out.join("\n"));
process.exit(0);
