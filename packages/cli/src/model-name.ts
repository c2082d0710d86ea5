/**
 * Ollama treats a model name without a tag as `:latest` ("llama3.2" and "llama3.2:latest" are one model).
 * The same rule as `normalizeModelName` in @foreman/shared (a test holds the two to the same answers); it is
 * repeated so that starting the CLI does not load the store, the logger and the config schema.
 */
export function normalizeModelName(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf("/") + 1);
  if (lastSegment.includes(":") || lastSegment.includes("@")) return name;
  return `${name}:latest`;
}

export function sameModel(a: string | null | undefined, b: string | null | undefined): boolean {
  return a != null && b != null && normalizeModelName(a) === normalizeModelName(b);
}
