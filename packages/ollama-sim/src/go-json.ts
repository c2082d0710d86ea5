/**
 * JSON as Go's encoding/json writes it: like JSON.stringify, but with <, > and & escaped (json.Marshal
 * is HTML-safe by default) and U+2028/U+2029 escaped.
 */
export function goJson(value: unknown): string {
  const text = JSON.stringify(value);
  return /[<>&\u2028\u2029]/.test(text) ? text.replace(/[<>&\u2028\u2029]/g, escapeChar) : text;
}

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** Go's %q for plain strings, as in `"%q does not support chat"`. */
export function goQuote(text: string): string {
  return goJson(text);
}
