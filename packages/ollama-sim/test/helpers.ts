import { request } from "node:http";
import type { SimEvent, Simulator, SimulatorOptions } from "../src/index.js";
import { startSimulator } from "../src/index.js";

/**
 * Returns a function that starts simulators for the current test and closes them after it.
 * Defaults are fast (5 ms loads, 5000 tokens/s) so tests spend no time waiting on the "model".
 */
export function simulators(): (options?: SimulatorOptions) => Promise<Simulator> {
  const open: Simulator[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((sim) => sim.close()));
  });
  return async (options = {}) => {
    const sim = await startSimulator({ loadMs: 5, tokensPerSecond: 5000, ...options });
    open.push(sim);
    return sim;
  };
}

export function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    ...init,
    headers: { "Content-Type": "application/json", ...(init.headers as Record<string, string> | undefined) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Parses an NDJSON body, insisting on Ollama's framing: one object per "\n"-terminated line. */
export function parseNdjson(text: string): Array<Record<string, unknown>> {
  if (!text.endsWith("\n"))
    throw new Error(`NDJSON body does not end with a newline: ${JSON.stringify(text.slice(-40))}`);
  return text
    .slice(0, -1)
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Parses an SSE body into its `data:` payloads, insisting on "data: ...\n\n" framing. */
export function parseSse(text: string): string[] {
  if (!text.endsWith("\n\n")) throw new Error("SSE body does not end with a blank line");
  return text
    .slice(0, -2)
    .split("\n\n")
    .map((event) => {
      if (!event.startsWith("data: ")) throw new Error(`not a data event: ${event}`);
      return event.slice("data: ".length);
    });
}

/** Resolves with the first simulator event matching `predicate`. */
export function nextEvent(sim: Simulator, predicate: (event: SimEvent) => boolean): Promise<SimEvent> {
  return new Promise((resolve) => {
    const off = sim.on((event) => {
      if (predicate(event)) {
        off();
        resolve(event);
      }
    });
  });
}

/** The error a failed fetch carries (undici wraps the socket error in `cause`). */
export async function fetchError(promise: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await promise;
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    return (cause ?? error) as NodeJS.ErrnoException;
  }
  throw new Error("expected the request to fail");
}

/** A GET on a fresh connection (no pooled keep-alive socket): the status, or the socket error code. */
export function freshGet(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}
