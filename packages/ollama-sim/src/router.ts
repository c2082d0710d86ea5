import type { RouteHandler } from "./route-context.js";

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  handler: RouteHandler;
}

export type RouteMatch =
  | { kind: "found"; pattern: string; handler: RouteHandler; params: Record<string, string> }
  | { kind: "method-not-allowed" }
  | { kind: "not-found" };

/**
 * Method + path dispatch with gin's answers for misses: 404 for an unknown path, 405 for a known
 * path with another method (Ollama's router sets HandleMethodNotAllowed).
 */
export class Router {
  private readonly exact = new Map<string, Route>();
  private readonly exactPaths = new Set<string>();
  private readonly dynamic: Route[] = [];

  add(method: string, pattern: string, handler: RouteHandler): this {
    const route: Route = { method, pattern, segments: pattern.split("/"), handler };
    if (pattern.includes("/:")) this.dynamic.push(route);
    else {
      this.exact.set(`${method} ${pattern}`, route);
      this.exactPaths.add(pattern);
    }
    return this;
  }

  match(method: string, path: string): RouteMatch {
    const route = this.exact.get(`${method} ${path}`);
    if (route) return { kind: "found", pattern: route.pattern, handler: route.handler, params: {} };
    let pathKnown = this.exactPaths.has(path);
    const segments = path.split("/");
    for (const candidate of this.dynamic) {
      const params = matchSegments(candidate.segments, segments);
      if (!params) continue;
      if (candidate.method === method) {
        return { kind: "found", pattern: candidate.pattern, handler: candidate.handler, params };
      }
      pathKnown = true;
    }
    return pathKnown ? { kind: "method-not-allowed" } : { kind: "not-found" };
  }
}

function matchSegments(pattern: string[], path: string[]): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] as string;
    const got = path[i] as string;
    if (want.startsWith(":")) {
      if (got === "") return undefined;
      try {
        params[want.slice(1)] = decodeURIComponent(got);
      } catch {
        return undefined;
      }
    } else if (want !== got) {
      return undefined;
    }
  }
  return params;
}
