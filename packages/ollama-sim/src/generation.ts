/**
 * Deterministic "model output": the text is a pure function of (model, prompt, options.seed), so
 * tests can compare runs and a replayed job produces the same tokens. Tokens are indices into a
 * fixed vocabulary whose JSON encodings are computed once, which keeps the streaming hot path free
 * of per-token JSON.stringify calls.
 */

const WORDS = [
  "the",
  "model",
  "answer",
  "queue",
  "token",
  "stream",
  "worker",
  "gateway",
  "simple",
  "quiet",
  "river",
  "stone",
  "light",
  "cloud",
  "signal",
  "result",
  "local",
  "steady",
  "window",
  "garden",
  "copper",
  "silver",
  "orange",
  "winter",
  "summer",
  "market",
  "letter",
  "number",
  "bridge",
  "harbor",
  "forest",
  "meadow",
  "planet",
  "rocket",
  "engine",
  "little",
  "bright",
  "gentle",
  "rapid",
  "calm",
  "and",
  "of",
  "to",
  "in",
  "with",
  "for",
  "on",
  "from",
  "by",
  "as",
  "is",
  "was",
  "will",
  "can",
  "may",
  "runs",
  "holds",
  "keeps",
  "moves",
  "waits",
  "every",
  "each",
  "some",
  "many",
] as const;

const WORD_COUNT = WORDS.length;
const TOKEN_TEXT: string[] = [];
for (const word of WORDS) {
  const capital = word.charAt(0).toUpperCase() + word.slice(1);
  TOKEN_TEXT.push(` ${word}`, capital, ` ${capital}`);
}
/** "The": the capitalized form of the first word. */
const CAPITAL_THE = 1;
const PERIOD = TOKEN_TEXT.push(".") - 1;
const COMMA = TOKEN_TEXT.push(",") - 1;
const JSON_OPEN = TOKEN_TEXT.push('{"') - 1;
const JSON_KEY = TOKEN_TEXT.push("answer") - 1;
const JSON_COLON = TOKEN_TEXT.push('": "') - 1;
const JSON_CLOSE = TOKEN_TEXT.push('"}') - 1;

/** JSON string literal of every token, so chunk lines are built by concatenation. */
const TOKEN_JSON: string[] = TOKEN_TEXT.map((text) => JSON.stringify(text));

export function tokenText(id: number): string {
  return TOKEN_TEXT[id] ?? "";
}

export function tokenJson(id: number): string {
  return TOKEN_JSON[id] ?? '""';
}

export function joinTokens(ids: ArrayLike<number>, from = 0, to = ids.length): string {
  let text = "";
  for (let i = from; i < to; i++) text += TOKEN_TEXT[ids[i] as number] ?? "";
  return text;
}

/** 32-bit FNV-1a: a stable seed from any string. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: small, fast, good enough to pick words. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes `count` tokens of prose: capitalized sentences, commas, and a final period when `end`. */
function prose(random: () => number, out: number[], count: number, end: boolean): void {
  if (count <= 0) return;
  const body = end ? count - 1 : count;
  let sentenceStart = true;
  let wordsLeft = 6 + Math.floor(random() * 7);
  for (let i = 0; i < body; i++) {
    if (wordsLeft === 0 && i < body - 1) {
      out.push(PERIOD);
      sentenceStart = true;
      wordsLeft = 6 + Math.floor(random() * 7);
      continue;
    }
    const word = Math.floor(random() * WORD_COUNT);
    if (sentenceStart) {
      out.push(word * 3 + (out.length === 0 ? 1 : 2));
      sentenceStart = false;
    } else if (wordsLeft > 2 && random() < 0.06) {
      out.push(COMMA);
    } else {
      out.push(word * 3);
    }
    wordsLeft--;
  }
  if (end) out.push(PERIOD);
}

export interface GenerationInput {
  model: string;
  /** The rendered prompt (system, messages, prompt) the output depends on. */
  prompt: string;
  /** options.seed; absent behaves as a fixed seed so output stays reproducible. */
  seed?: number | undefined;
  /** options.num_predict; a positive value makes exactly that many tokens, done_reason "length". */
  numPredict?: number | undefined;
  /** Emit thinking tokens first (think enabled on a thinking-capable model). */
  think: boolean;
  /** format "json" or a schema: the content is one JSON object. */
  json: boolean;
  /** Token count when num_predict is not set. */
  defaultTokens: number;
}

export interface GenerationPlan {
  tokens: number[];
  /** The first `thinkingCount` tokens are thinking, the rest content. */
  thinkingCount: number;
  doneReason: "stop" | "length";
}

export function planGeneration(input: GenerationInput): GenerationPlan {
  const limited = typeof input.numPredict === "number" && input.numPredict > 0;
  const total = Math.max(1, Math.floor(limited ? (input.numPredict as number) : input.defaultTokens));
  const thinkingCount = input.think && total >= 2 ? Math.max(1, Math.floor(total / 3)) : 0;
  const contentCount = total - thinkingCount;
  const key = `${input.model}\u0000${input.prompt}\u0000${input.seed ?? 0}`;
  const tokens: number[] = [];
  if (thinkingCount > 0) prose(seededRandom(hashString(`think\u0000${key}`)), tokens, thinkingCount, true);
  const content: number[] = [];
  const random = seededRandom(hashString(key));
  if (input.json) {
    // {"answer": "<prose>"} stays valid JSON whatever the length, once there is room for it.
    content.push(JSON_OPEN, JSON_KEY, JSON_COLON);
    if (contentCount >= 5) {
      const words: number[] = [];
      prose(random, words, contentCount - 4, false);
      content.push(...words, JSON_CLOSE);
    } else {
      content.push(CAPITAL_THE, JSON_CLOSE);
      content.length = contentCount;
    }
  } else {
    prose(random, content, contentCount, !limited);
  }
  tokens.push(...content);
  return { tokens, thinkingCount, doneReason: limited ? "length" : "stop" };
}

/** The `context` ints a final generate chunk carries: stable for the same prompt and output. */
export function contextTokens(seedText: string, count: number): number[] {
  const random = seededRandom(hashString(`context\u0000${seedText}`));
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = 1 + Math.floor(random() * 128_000);
  return out;
}
