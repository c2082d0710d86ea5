import type { IncomingMessage, ServerResponse } from "node:http";
import { goJson } from "./go-json.js";

/** gin's c.JSON content type. */
export const JSON_TYPE = "application/json; charset=utf-8";
export const NDJSON_TYPE = "application/x-ndjson";
export const TEXT_TYPE = "text/plain; charset=utf-8";

export function sendBody(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendBody(res, status, JSON_TYPE, goJson(value));
}

/** Ollama's error body: {"error": "<message>"}. */
export function sendError(res: ServerResponse, status: number, message: string): void {
  sendBody(res, status, JSON_TYPE, goJson({ error: message }));
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  sendBody(res, status, TEXT_TYPE, text);
}

/** A 200 with no body, as Ollama's copy and delete answer. */
export function sendEmpty(res: ServerResponse, status = 200): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "Content-Length": 0 });
  res.end();
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export type JsonBody = { ok: true; body: Record<string, unknown> } | { ok: false; message: string };

/**
 * Parses a JSON object body with the errors gin's ShouldBindJSON gives: "missing request body" for
 * an empty one, Go's decoder messages otherwise. `goType` names the target, e.g. "api.ChatRequest".
 */
export function parseJsonBody(raw: Buffer, goType: string): JsonBody {
  const text = raw.toString("utf8");
  if (text.trim() === "") return { ok: false, message: "missing request body" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, message: goSyntaxError(text) };
  }
  if (value === null) return { ok: true, body: {} };
  if (typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, message: `json: cannot unmarshal ${jsonKind(value)} into Go value of type ${goType}` };
  }
  return { ok: true, body: value as Record<string, unknown> };
}

export async function readJsonBody(req: IncomingMessage, goType: string): Promise<JsonBody> {
  return parseJsonBody(await readBody(req), goType);
}

/** The JSON kind Go names in unmarshal errors. */
export function jsonKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value; // "number" | "string" | "object"
}

function goSyntaxError(text: string): string {
  const first = text.trimStart().charAt(0);
  if (!/[{["\-0-9tfn]/.test(first)) return `invalid character '${first}' looking for beginning of value`;
  return "unexpected EOF";
}

/** Go's expected kinds for the request fields the simulator reads. */
export type GoFieldType = "string" | "bool" | "int" | "[]string" | "object" | "array";

const GO_TYPE_NAMES: Record<GoFieldType, string> = {
  string: "string",
  bool: "bool",
  int: "int",
  "[]string": "[]string",
  object: "map[string]interface {}",
  array: "[]",
};

/**
 * Checks field types the way encoding/json rejects them ("json: cannot unmarshal number into Go
 * struct field GenerateRequest.prompt of type string"). Returns the message, or undefined.
 */
export function checkFieldTypes(
  body: Record<string, unknown>,
  struct: string,
  fields: Record<string, GoFieldType | { array: string }>,
): string | undefined {
  for (const [field, expected] of Object.entries(fields)) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    let ok: boolean;
    let goName: string;
    if (typeof expected === "object") {
      ok = Array.isArray(value);
      goName = `[]${expected.array}`;
    } else {
      goName = GO_TYPE_NAMES[expected];
      switch (expected) {
        case "string":
          ok = typeof value === "string";
          break;
        case "bool":
          ok = typeof value === "boolean";
          break;
        case "int":
          ok = typeof value === "number";
          break;
        case "[]string":
          ok = Array.isArray(value) && value.every((v) => typeof v === "string");
          break;
        case "object":
          ok = typeof value === "object" && !Array.isArray(value);
          break;
        default:
          ok = Array.isArray(value);
      }
    }
    if (!ok)
      return `json: cannot unmarshal ${jsonKind(value)} into Go struct field ${struct}.${field} of type ${goName}`;
  }
  return undefined;
}
