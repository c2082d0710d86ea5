/**
 * The embedder (FOREMAN_EMBED_MODEL) stays resident in one of the target's two slots. When a caller embeds with FOREMAN_EMBED_MODEL and did not choose
 * a keep_alive, foreman asks for `-1` so Ollama never lets it expire. This is on the embedding hot path, so
 * the body is not parsed: in JSON an unescaped `"model": "<name>"` can only be a key and its value, and
 * `"keep_alive":-1` is spliced in as the object's first key. Anything else is forwarded as sent (malformed
 * JSON included: the target's own 400 is the faithful answer). `createEmbedRouting` composes the two below.
 */

/**
 * A test for "this body names the embedder", without a JSON parse: a byte search for the name first (most
 * bodies of other models stop there), then the `"model": "<name>"` pattern. Returns the body's text when it
 * does (for `pinnedBody`), else null.
 */
export function createEmbedderMatcher(embedModel: string): (body: Buffer) => string | null {
  const modelPattern = new RegExp(`"model"\\s*:\\s*${escapeRegExp(JSON.stringify(embedModel))}`);
  const needle = Buffer.from(embedModel);
  return (body) => {
    if (!body.includes(needle)) return null;
    const text = body.toString("utf8");
    return modelPattern.test(text) ? text : null;
  };
}

const KEEP_ALIVE_KEY = /"keep_alive"\s*:/;

/** `body` (whose text is `text`) with `"keep_alive":-1` as its first key, unless it is no object or sets one. */
export function pinnedBody(text: string, body: Buffer): Buffer {
  const open = text.search(/\S/);
  if (open < 0 || text[open] !== "{" || KEEP_ALIVE_KEY.test(text)) return body;
  const rest = text.slice(open + 1);
  const separator = /^\s*}/.test(rest) ? "" : ",";
  return Buffer.from(`{"keep_alive":-1${separator}${rest}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
