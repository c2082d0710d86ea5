/**
 * Ollama treats a model name without a tag as `:latest` ("llama3.2" and "llama3.2:latest" are one model;
 * server/routes.go parses both to the same name). Queue grouping and residency compare normalized names, so
 * callers that omit the tag drain with those that spell it out.
 */
export function normalizeModelName(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf("/") + 1);
  if (lastSegment.includes(":") || lastSegment.includes("@")) return name;
  return `${name}:latest`;
}

export function sameModel(a: string | null | undefined, b: string | null | undefined): boolean {
  return a != null && b != null && normalizeModelName(a) === normalizeModelName(b);
}
