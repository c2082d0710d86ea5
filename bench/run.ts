import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { benchEmbedProxy } from "./embed-proxy.js";
import { benchDrain, benchGeneration } from "./generation.js";
import { benchLargeDatabase, benchPostJobs } from "./jobs.js";
import { type BenchResult, findNginx, findWrk, ROOT, type Section, type SummaryRow, table } from "./lib.js";
import { benchMixed, FULL_WORKLOAD, SMALL_WORKLOAD } from "./mixed.js";
import { benchQueuePosition } from "./queue-position.js";
import { benchScale } from "./scale.js";

/**
 * `pnpm bench`: runs the benchmarks and prints one table, each foreman figure beside its reference measured
 * in the same run; writes the results as JSON (bench-results/<time>.json, or `--json <path>`) and the
 * detailed tables as Markdown beside it. `--small` (or BENCH_SIZE=small) is the size CI runs: it finishes in
 * well under two minutes and checks no threshold. `--details` also prints the detailed tables.
 */
const args = process.argv.slice(2).filter((a) => a !== "--");
const flag = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
};
const option = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return value;
};
const small = flag("--small") || process.env.BENCH_SIZE === "small";
const details = flag("--details");
const jsonPath = option("--json");
const only = args;
const num = (name: string, full: number, reduced: number) => Number(process.env[name] ?? (small ? reduced : full));

const durationMs = num("BENCH_DURATION_MS", 5000, 1000);
const benches: Array<[string, () => Promise<BenchResult | Section | Section[]>]> = [
  ["embed-proxy", () => benchEmbedProxy(durationMs, small ? 1 : 3)],
  ["generation", () => benchGeneration(num("BENCH_ITERATIONS", 200, 50), small ? 300 : 1000)],
  ["drain", () => benchDrain(small ? 9 : 60)],
  ["mixed", () => benchMixed(small ? SMALL_WORKLOAD : FULL_WORKLOAD)],
  ["post-jobs", () => benchPostJobs(durationMs)],
  [
    "scale",
    () =>
      benchScale({
        queued: num("BENCH_QUEUED_JOBS", 100_000, 10_000),
        finished: num("BENCH_JOBS", 1_000_000, 100_000),
        posts: num("BENCH_POSTS", 100_000, 10_000),
        durationMs,
        rounds: small ? 200 : 500,
      }),
  ],
];
// The earlier separate scale benchmarks, run only when named.
const named: typeof benches = [
  ["large-db", () => benchLargeDatabase(num("BENCH_JOBS", 1_000_000, 100_000), 2000)],
  ["queue-position", () => benchQueuePosition(num("BENCH_QUEUED_JOBS", 100_000, 10_000), 1000)],
];
const unknown = only.filter((n) => ![...benches, ...named].some(([name]) => name === n));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(", ")}; known: ${[...benches, ...named].map(([n]) => n).join(", ")}`);
  process.exit(2);
}

const startedAt = new Date();
const loadBefore = os.loadavg();
const wrk = findWrk();
const nginx = findNginx();
const version = (cmd: string | null, flagArg: string) => {
  if (!cmd) return null;
  try {
    return execFileSync(cmd, [flagArg], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (e) {
    // nginx -v writes to stderr; wrk -v exits 1.
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ""}${err.stderr ?? ""}`.trim().split("\n")[0] ?? null;
  }
};
const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? "unknown",
  memoryGb: Number((os.totalmem() / 1e9).toFixed(1)),
  platform: `${os.platform()} ${os.release()}`,
  node: process.version,
  wrk: version(wrk, "-v"),
  nginx: version(nginx, "-v"),
};

const sections: Section[] = [];
const rows: SummaryRow[] = [];
const timings: Record<string, number> = {};
for (const [name, run] of only.length > 0 ? [...benches, ...named].filter(([n]) => only.includes(n)) : benches) {
  console.error(`running ${name}…`);
  const t0 = performance.now();
  const result = await run();
  timings[name] = Number(((performance.now() - t0) / 1000).toFixed(1));
  const r: BenchResult = "rows" in result ? result : { sections: Array.isArray(result) ? result : [result], rows: [] };
  sections.push(...r.sections);
  rows.push(...r.rows);
  if (details) for (const s of r.sections) console.log(renderSection(s));
}
const loadAfter = os.loadavg();

function renderSection(s: Section): string {
  return [`## ${s.title}`, "", s.table, "", ...s.summary.map((line) => `- ${line}`), ""].join("\n");
}

const header = `foreman benchmarks — ${startedAt.toISOString()} — ${small ? "small" : "full"} size — node ${process.version}, ${machine.cpus} × ${machine.cpuModel}; load average ${loadBefore[0]!.toFixed(2)} before, ${loadAfter[0]!.toFixed(2)} after; load from ${wrk ? "wrk" : "the Node load generator (wrk not installed)"}${nginx ? "" : "; nginx not installed"}`;
const summaryTable = table(
  ["measure", "foreman", "reference (same run)", "goal"],
  rows.map((r) => [r.measure, r.foreman, r.reference, r.goal]),
);
console.log(`${header}\n\n${summaryTable}`);

const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
const outJson = jsonPath ? path.resolve(jsonPath) : path.join(ROOT, "bench-results", `${stamp}.json`);
fs.mkdirSync(path.dirname(outJson), { recursive: true });
fs.writeFileSync(
  outJson,
  `${JSON.stringify(
    {
      startedAt: startedAt.toISOString(),
      size: small ? "small" : "full",
      machine,
      loadAverage: { before: loadBefore, after: loadAfter },
      secondsPerBenchmark: timings,
      rows,
      sections,
    },
    null,
    2,
  )}\n`,
);
const md = [`# ${header}`, "", summaryTable, "", ...sections.map(renderSection)].join("\n");
fs.mkdirSync(path.join(ROOT, "bench-results"), { recursive: true });
fs.writeFileSync(path.join(ROOT, "bench-results", "latest.md"), md);
console.error(`results: ${path.relative(process.cwd(), outJson)} (JSON), bench-results/latest.md (detailed tables)`);
process.exit(0);
