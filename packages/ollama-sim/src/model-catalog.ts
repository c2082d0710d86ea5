import { createHash } from "node:crypto";
import type { SimClock } from "./clock.js";
import type { SimModel } from "./interfaces.js";
import {
  displayShortest,
  fullModelName,
  isValidModelName,
  type ModelName,
  modelKey,
  parseModelName,
} from "./model-name.js";

export interface ModelLayer {
  mediaType: string;
  /** "sha256:<64 hex>" */
  digest: string;
  size: number;
}

/** A SimModel with every default filled in, plus what Ollama derives from its manifest. */
export interface CatalogModel {
  /** DisplayShortest form: "llama3.2:latest". */
  name: string;
  /** registry.ollama.ai/library/llama3.2:latest */
  fullName: string;
  key: string;
  /** Hex sha256 of the manifest, as /api/tags shows it. */
  digest: string;
  modifiedAt: number;
  loadMs: number;
  tokensPerSecond: number;
  promptTokensPerSecond: number;
  embeddingSize: number | undefined;
  family: string;
  parameterSize: string;
  quantization: string;
  sizeBytes: number;
  capabilities: string[];
  contextLength: number;
  layers: ModelLayer[];
  source: SimModel;
}

export interface CatalogDefaults {
  loadMs: number;
  tokensPerSecond: number;
}

export function sha256Hex(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

export type NameLookup =
  | { ok: true; name: ModelName; key: string; display: string }
  | { ok: false; reason: "required" | "invalid" };

const lookups = new Map<string, NameLookup>();

/** Parses a model reference the way handlers do before looking it up (memoized: it is on every request). */
export function lookupName(raw: string | undefined): NameLookup {
  if (raw === undefined || raw.trim() === "") return { ok: false, reason: "required" };
  const cached = lookups.get(raw);
  if (cached) return cached;
  const name = parseModelName(raw);
  const result: NameLookup = isValidModelName(name)
    ? { ok: true, name, key: modelKey(name), display: displayShortest(name) }
    : { ok: false, reason: "invalid" };
  if (lookups.size >= 1000) lookups.clear();
  lookups.set(raw, result);
  return result;
}

export class ModelCatalog {
  private readonly models = new Map<string, CatalogModel>();
  private readonly uploadedBlobs = new Set<string>();

  constructor(
    models: readonly SimModel[],
    private readonly defaults: CatalogDefaults,
    private readonly clock: SimClock,
  ) {
    this.replaceAll(models);
  }

  replaceAll(models: readonly SimModel[]): void {
    this.models.clear();
    // Older entries first, so the list (newest first, as Ollama sorts it) keeps the given order.
    const now = this.clock.now();
    models.forEach((model, i) => {
      this.add(model, now - (i + 1) * 86_400_000);
    });
  }

  /** Adds or replaces a model; throws when its name is not a valid Ollama name. */
  add(model: SimModel, modifiedAt = this.clock.now()): CatalogModel {
    const entry = this.resolve(model, modifiedAt);
    this.models.set(entry.key, entry);
    return entry;
  }

  /** The catalog entry `model` would become, without storing it. */
  resolve(model: SimModel, modifiedAt = this.clock.now()): CatalogModel {
    const parsed = parseModelName(model.name);
    if (!isValidModelName(parsed)) throw new Error(`invalid model name: ${model.name}`);
    const name = displayShortest(parsed);
    const full = fullModelName(parsed);
    const embeddingSize = model.embeddingSize && model.embeddingSize > 0 ? model.embeddingSize : undefined;
    const tokensPerSecond = positive(model.tokensPerSecond) ?? this.defaults.tokensPerSecond;
    const sizeBytes = positive(model.sizeBytes) ?? (embeddingSize ? 274_302_450 : 2_000_000_000);
    return {
      name,
      fullName: full,
      key: modelKey(parsed),
      digest: sha256Hex(`manifest:${full}`),
      modifiedAt,
      loadMs: nonNegative(model.loadMs) ?? this.defaults.loadMs,
      tokensPerSecond,
      promptTokensPerSecond: positive(model.promptTokensPerSecond) ?? tokensPerSecond * 10,
      embeddingSize,
      family: model.family ?? (embeddingSize ? "bert" : "llama"),
      parameterSize: model.parameterSize ?? (embeddingSize ? "137M" : "3.2B"),
      quantization: model.quantization ?? (embeddingSize ? "F16" : "Q4_K_M"),
      sizeBytes,
      capabilities: model.capabilities ?? (embeddingSize ? ["embedding"] : ["completion"]),
      contextLength: positive(model.contextLength) ?? (embeddingSize ? 2048 : 4096),
      layers: [
        {
          mediaType: "application/vnd.ollama.image.model",
          digest: `sha256:${sha256Hex(`model:${full}`)}`,
          size: sizeBytes,
        },
        {
          mediaType: "application/vnd.ollama.image.template",
          digest: `sha256:${sha256Hex(`template:${full}`)}`,
          size: 1_429,
        },
        {
          mediaType: "application/vnd.ollama.image.license",
          digest: `sha256:${sha256Hex(`license:${full}`)}`,
          size: 7_711,
        },
        { mediaType: "application/vnd.ollama.image.params", digest: `sha256:${sha256Hex(`params:${full}`)}`, size: 96 },
      ],
      source: { ...model, name },
    };
  }

  get(key: string): CatalogModel | undefined {
    return this.models.get(key);
  }

  /** Resolves a raw model reference to a stored model. */
  find(raw: string | undefined): CatalogModel | undefined {
    const lookup = lookupName(raw);
    return lookup.ok ? this.models.get(lookup.key) : undefined;
  }

  remove(key: string): boolean {
    return this.models.delete(key);
  }

  /** Newest first, as /api/tags lists them. */
  list(): CatalogModel[] {
    return [...this.models.values()].sort((a, b) => b.modifiedAt - a.modifiedAt);
  }

  sources(): SimModel[] {
    return this.list().map((m) => ({ ...m.source }));
  }

  blobExists(digest: string): boolean {
    const normalized = digest.replace("-", ":").toLowerCase();
    if (this.uploadedBlobs.has(normalized)) return true;
    for (const model of this.models.values()) {
      if (model.layers.some((layer) => layer.digest === normalized)) return true;
    }
    return false;
  }

  addBlob(digest: string): void {
    this.uploadedBlobs.add(digest.replace("-", ":").toLowerCase());
  }
}

function positive(value: number | undefined): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : undefined;
}

function nonNegative(value: number | undefined): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}
