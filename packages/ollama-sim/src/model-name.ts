/**
 * Model names as Ollama parses them (types/model/name.go): `[host/][namespace/]model[:tag]`,
 * defaulting to registry.ollama.ai, library and latest. Lookups are case-insensitive because
 * getExistingName (server/routes.go) matches stored names with strings.EqualFold.
 */

const DEFAULT_HOST = "registry.ollama.ai";
const DEFAULT_NAMESPACE = "library";
const DEFAULT_TAG = "latest";

export interface ModelName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

function cutLast(s: string, sep: string): [string, string, boolean] {
  const i = s.lastIndexOf(sep);
  return i >= 0 ? [s.slice(0, i), s.slice(i + sep.length), true] : [s, "", false];
}

/** ParseName: missing parts take their defaults; the result may still be invalid. */
export function parseModelName(raw: string): ModelName {
  let s = raw.trim();
  let tag = "";
  if (s.lastIndexOf(":") > s.lastIndexOf("/")) {
    [s, tag] = cutLast(s, ":");
  }
  let model: string;
  let namespace = "";
  let host = "";
  let promised: boolean;
  [s, model, promised] = cutLast(s, "/");
  if (!promised) {
    model = s;
  } else {
    [s, namespace, promised] = cutLast(s, "/");
    if (!promised) {
      namespace = s;
    } else {
      const scheme = s.indexOf("://");
      host = scheme >= 0 ? s.slice(scheme + 3) : s;
    }
  }
  return {
    host: host || DEFAULT_HOST,
    namespace: namespace || DEFAULT_NAMESPACE,
    model,
    tag: tag || DEFAULT_TAG,
  };
}

function isAlnumOrUnderscore(c: string): boolean {
  const code = c.charCodeAt(0);
  return (
    (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 // 0-9 A-Z a-z _
  );
}

function isValidPart(kind: "host" | "namespace" | "model" | "tag", s: string): boolean {
  const max = kind === "host" ? 350 : 80;
  if (s.length < 1 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (i === 0) {
      if (!isAlnumOrUnderscore(c)) return false;
      continue;
    }
    if (c === "_" || c === "-") continue;
    if (c === ".") {
      if (kind === "namespace") return false;
      continue;
    }
    if (c === ":") {
      if (kind !== "host") return false;
      continue;
    }
    if (!isAlnumOrUnderscore(c)) return false;
  }
  return true;
}

export function isValidModelName(name: ModelName): boolean {
  return (
    isValidPart("host", name.host) &&
    isValidPart("namespace", name.namespace) &&
    isValidPart("model", name.model) &&
    isValidPart("tag", name.tag)
  );
}

/** DisplayShortest: "llama3.2:latest", "me/mine:1b", "host.example/ns/m:tag". */
export function displayShortest(name: ModelName): string {
  let prefix = "";
  if (name.host.toLowerCase() !== DEFAULT_HOST) {
    prefix = `${name.host}/${name.namespace}/`;
  } else if (name.namespace.toLowerCase() !== DEFAULT_NAMESPACE) {
    prefix = `${name.namespace}/`;
  }
  return `${prefix}${name.model}:${name.tag}`;
}

/** Name.String: the fully qualified form Ollama uses as Model.Name in some errors. */
export function fullModelName(name: ModelName): string {
  return `${name.host}/${name.namespace}/${name.model}:${name.tag}`;
}

/** The case-insensitive key under which the catalog and the scheduler file a model. */
export function modelKey(name: ModelName): string {
  return fullModelName(name).toLowerCase();
}
