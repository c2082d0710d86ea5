import type { SimulatorOptions } from "./interfaces.js";

export const USAGE = `Usage: ollama-sim [options]

Starts an Ollama simulator (native API, /v1 compatibility, /_sim control routes).

Options:
  --host <addr>          listen address (default 127.0.0.1)
  --port <n>             listen port (default 11434; 0 picks a free one)
  --max-loaded <n>       OLLAMA_MAX_LOADED_MODELS (default 2; 0 = no limit)
  --models <file>        JSON file: an array of models, or {"models": [...]}
  --token <token>        require Authorization: Bearer <token> on /api and /v1
  --load-ms <ms>         load time of models that set none (default 250)
  --tps <n>              tokens per second of models that set none (default 100)
  --keep-alive <dur>     default keep_alive, e.g. 5m, 30s, -1 (default 5m)
  --pull-ms <ms>         duration of a simulated pull or push (default 1500)
  --ollama-version <v>   what /api/version answers
  -h, --help             show this help`;

export class CliError extends Error {}

export interface CliOptions {
  help: boolean;
  modelsFile: string | undefined;
  simulator: SimulatorOptions;
}

function integer(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${flag} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`${flag} must be a positive number, got "${value}"`);
  return n;
}

/** Parses the CLI flags (`--flag value` or `--flag=value`). The model file is read by main. */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  const simulator: SimulatorOptions = { host: "127.0.0.1", port: 11434, pullMs: 1500 };
  let modelsFile: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) throw new CliError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new CliError(`${flag} needs a value`);
      value = next;
      i++;
    }
    switch (flag) {
      case "--host":
        simulator.host = value;
        break;
      case "--port":
        simulator.port = integer(flag, value, 0);
        break;
      case "--max-loaded":
        simulator.maxLoadedModels = integer(flag, value, 0);
        break;
      case "--models":
        modelsFile = value;
        break;
      case "--token":
        if (value === "") throw new CliError("--token must not be empty");
        simulator.token = value;
        break;
      case "--load-ms":
        simulator.loadMs = integer(flag, value, 0);
        break;
      case "--tps":
        simulator.tokensPerSecond = positiveNumber(flag, value);
        break;
      case "--keep-alive":
        simulator.defaultKeepAlive = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
        break;
      case "--pull-ms":
        simulator.pullMs = integer(flag, value, 0);
        break;
      case "--ollama-version":
        simulator.version = value;
        break;
      default:
        throw new CliError(`unknown option ${flag}`);
    }
  }
  return { help, modelsFile, simulator };
}

/** The models of a --models file: an array, or an object with a "models" array. */
export function parseModelsFile(text: string, file: string): NonNullable<SimulatorOptions["models"]> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  const models = Array.isArray(value) ? value : (value as { models?: unknown } | null)?.models;
  if (!Array.isArray(models) || models.some((m) => typeof m !== "object" || m === null || typeof m.name !== "string")) {
    throw new CliError(`${file} must hold an array of models like [{"name": "llama3.2:latest"}], or {"models": [...]}`);
  }
  return models;
}
