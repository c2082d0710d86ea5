#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { CliError, parseCliArgs, parseModelsFile, USAGE } from "./cli-args.js";
import { startSimulator } from "./server.js";

async function main(): Promise<void> {
  const cli = parseCliArgs(process.argv.slice(2));
  if (cli.help) {
    console.log(USAGE);
    return;
  }
  if (cli.modelsFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(cli.modelsFile, "utf8");
    } catch (error) {
      throw new CliError(`cannot read --models ${cli.modelsFile}: ${(error as Error).message}`);
    }
    cli.simulator.models = parseModelsFile(text, cli.modelsFile);
  }
  const sim = await startSimulator(cli.simulator);
  console.log(`ollama-sim listening on ${sim.url}`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void sim.close().then(
      () => process.exit(0),
      () => process.exit(signal === "SIGINT" ? 130 : 143),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(error instanceof CliError ? `ollama-sim: ${message}\n\n${USAGE}` : `ollama-sim: ${message}`);
  process.exit(error instanceof CliError ? 2 : 1);
});
