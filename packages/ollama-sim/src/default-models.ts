import type { SimModel } from "./interfaces.js";

/**
 * The library a simulator starts with: three chat models with different capabilities and the
 * embedder foreman keeps resident. Load time and token rate come from SimulatorOptions so the
 * CLI's --load-ms/--tps apply to them.
 */
export const DEFAULT_MODELS: readonly SimModel[] = Object.freeze([
  {
    name: "llama3.2:latest",
    family: "llama",
    parameterSize: "3.2B",
    quantization: "Q4_K_M",
    sizeBytes: 2_019_393_189,
    capabilities: ["completion", "tools"],
  },
  {
    name: "qwen3:8b",
    family: "qwen3",
    parameterSize: "8.2B",
    quantization: "Q4_K_M",
    sizeBytes: 5_225_387_923,
    capabilities: ["completion", "tools", "thinking"],
  },
  {
    name: "gemma3:4b",
    family: "gemma3",
    parameterSize: "4.3B",
    quantization: "Q4_K_M",
    sizeBytes: 3_338_801_804,
    capabilities: ["completion", "vision"],
  },
  {
    name: "nomic-embed-text:latest",
    family: "nomic-bert",
    parameterSize: "137M",
    quantization: "F16",
    sizeBytes: 274_302_450,
    embeddingSize: 768,
    contextLength: 2048,
    capabilities: ["embedding"],
  },
]);

export const DEFAULT_LOAD_MS = 250;
export const DEFAULT_TOKENS_PER_SECOND = 100;
export const DEFAULT_TOKENS = 24;
export const DEFAULT_VERSION = "0.32.14";
export const DEFAULT_KEEP_ALIVE = "5m";
export const DEFAULT_MAX_LOADED_MODELS = 2;
