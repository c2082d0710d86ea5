import { abortChaosRuns, formatReport, runChaos } from "./chaos.js";

/**
 * `pnpm test:chaos [--jobs N] [--seed N] [--small] [--calm]`: the reliability suite. Prints the seed first, so a run
 * that finds something can be replayed with the same plan; exits 1 when a guarantee was broken. `--calm` runs
 * the same workload and checks with no faults.
 */
function parseArgs(argv: string[]): { jobs: number; seed: number; calm: boolean } {
  let jobs = 300;
  let seed = Math.floor(Math.random() * 2 ** 31);
  let calm = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${arg} takes a non-negative integer`);
      return v;
    };
    if (arg === "--jobs") jobs = value();
    else if (arg === "--seed") seed = value();
    else if (arg === "--small") jobs = 60;
    else if (arg === "--calm") calm = true;
    else if (arg === "--") continue;
    else throw new Error(`unknown argument ${arg}; use --jobs N, --seed N, --small or --calm`);
  }
  if (jobs < 1) throw new Error("--jobs must be at least 1");
  return { jobs, seed, calm };
}

let options: { jobs: number; seed: number; calm: boolean };
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
console.log(`chaos: seed ${options.seed}, ${options.jobs} jobs`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`chaos: ${signal}; stopping every process and removing the data directory`);
    void abortChaosRuns().then(() => process.exit(130));
  });
}
const report = await runChaos({ ...options, log: (line) => console.log(line) });
console.log(formatReport(report));
process.exit(report.violations.length === 0 ? 0 : 1);
