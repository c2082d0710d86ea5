/**
 * SPEC §2.1: the embedder stays resident. When a caller embeds with FOREMAN_EMBED_MODEL and did not choose
 * a keep_alive, foreman asks for `-1` so Ollama never lets it expire. Any other body is forwarded as sent
 * (malformed JSON included: the target's own 400 is the faithful answer).
 */
export function pinEmbedder(body: Buffer, embedModel: string | undefined): Buffer {
  if (!embedModel || body.length === 0 || !body.includes(embedModel)) return body;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return body;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return body;
  const request = parsed as Record<string, unknown>;
  if (request.model !== embedModel || request.keep_alive !== undefined) return body;
  return Buffer.from(JSON.stringify({ ...request, keep_alive: -1 }));
}
