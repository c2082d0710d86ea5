/**
 * The embedder (FOREMAN_EMBED_MODEL) stays resident in one of the target's two slots. When a caller embeds with FOREMAN_EMBED_MODEL and did not choose
 * a keep_alive, foreman asks for `-1` so Ollama never lets it expire. This is on the embedding hot path, so
 * the body is not parsed: in JSON an unescaped `"model": "<name>"` can only be a key and its value, and
 * `"keep_alive":-1` is spliced in as the object's first key. Anything else is forwarded as sent (malformed
 * JSON included: the target's own 400 is the faithful answer).
 */
export function createEmbedderPinner(embedModel: string | undefined): (body: Buffer) => Buffer {
  if (!embedModel) return (body) => body;
  const modelPattern = new RegExp(`"model"\\s*:\\s*${escapeRegExp(JSON.stringify(embedModel))}`);
  const keepAlivePattern = /"keep_alive"\s*:/;
  const needle = Buffer.from(embedModel);
  return (body) => {
    if (!body.includes(needle)) return body;
    const text = body.toString("utf8");
    const open = text.search(/\S/);
    if (open < 0 || text[open] !== "{" || !modelPattern.test(text) || keepAlivePattern.test(text)) return body;
    const rest = text.slice(open + 1);
    const separator = /^\s*}/.test(rest) ? "" : ",";
    return Buffer.from(`{"keep_alive":-1${separator}${rest}`);
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
