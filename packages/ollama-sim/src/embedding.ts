import { hashString, seededRandom } from "./generation.js";

/** A unit vector and its JSON text, computed once per (model, input, dimensions). */
export interface Embedding {
  values: Float32Array;
  /** The vector's JSON text, each value as printed (rounded to 8 decimals). */
  json: string;
}

/**
 * A value rounded to 8 decimals, printed without trailing zeros ("0.0123457", "-0.5"). That is about
 * float32's precision, as in Go's JSON for a []float32. Go prints the shortest decimal that
 * round-trips each float32; searching for it costs about 1 ms per 768-dim vector, too much for the
 * embed path that benchmarks measure, and integer formatting is several times cheaper than
 * String(number).
 */
function decimal8(scaled: number): string {
  if (scaled === 0) return "0";
  const sign = scaled < 0 ? "-" : "";
  const abs = scaled < 0 ? -scaled : scaled;
  const whole = Math.floor(abs / 1e8);
  let fraction = abs - whole * 1e8;
  if (fraction === 0) return `${sign}${whole}`;
  let digits = 8;
  while (fraction % 10 === 0) {
    fraction /= 10;
    digits--;
  }
  return `${sign}${whole}.${String(fraction).padStart(digits, "0")}`;
}

function normalize(values: Float32Array): Float32Array {
  let sum = 0;
  for (const v of values) sum += v * v;
  const norm = 1 / Math.max(Math.sqrt(sum), 1e-12);
  for (let i = 0; i < values.length; i++) values[i] = Math.fround((values[i] as number) * norm);
  return values;
}

/**
 * Deterministic embeddings with a bounded cache, so the embed path (which benchmarks measure the
 * proxy against) costs a map lookup and a string join for inputs seen before.
 */
export class EmbeddingCache {
  private readonly entries = new Map<string, Embedding>();

  constructor(private readonly maxEntries = 10_000) {}

  get(model: string, size: number, input: string, dimensions = 0): Embedding {
    const dims = dimensions > 0 && dimensions < size ? dimensions : size;
    const key = `${model}\u0000${dims}\u0000${input}`;
    const cached = this.entries.get(key);
    if (cached) return cached;
    const random = seededRandom(hashString(`${model}\u0000${input}`));
    const full = new Float32Array(size);
    for (let i = 0; i < size; i++) full[i] = random() * 2 - 1;
    normalize(full);
    // Ollama normalizes, cuts to `dimensions`, then normalizes again (EmbedHandler).
    const values = dims < size ? normalize(full.slice(0, dims)) : full;
    const parts = new Array<string>(values.length);
    for (let i = 0; i < values.length; i++) {
      const scaled = Math.round((values[i] as number) * 1e8);
      values[i] = scaled / 1e8;
      parts[i] = decimal8(scaled);
    }
    // join() gives one flat string: cached vectors stay compact and write fast.
    const embedding = { values, json: `[${parts.join(",")}]` };
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, embedding);
    return embedding;
  }
}

/** The simulated tokenizer's count for one embedding input (BOS and EOS included). */
export function embeddingTokenCount(input: string): number {
  return Math.ceil(input.length / 4) + 2;
}
