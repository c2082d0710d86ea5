/**
 * `keep_alive` parsing, as api.Duration.UnmarshalJSON does it (api/types.go): a number is seconds,
 * a string is a Go duration, and anything negative means "keep loaded forever" (Go stores
 * math.MaxInt64; here it is Infinity).
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

export class DurationError extends Error {}

function quote(value: string): string {
  return JSON.stringify(value);
}

/** Go's time.ParseDuration, returning milliseconds; throws DurationError with Go's message. */
export function parseGoDuration(input: string): number {
  const orig = input;
  let s = input;
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s.startsWith("-");
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw new DurationError(`time: invalid duration ${quote(orig)}`);
  let total = 0;
  while (s !== "") {
    const number = /^(\d*)(\.(\d*))?/.exec(s);
    const whole = number?.[1] ?? "";
    const frac = number?.[3] ?? "";
    if (whole === "" && frac === "") throw new DurationError(`time: invalid duration ${quote(orig)}`);
    s = s.slice(number?.[0].length ?? 0);
    const unitMatch = /^[^\d.]*/.exec(s);
    const unit = unitMatch?.[0] ?? "";
    if (unit === "") throw new DurationError(`time: missing unit in duration ${quote(orig)}`);
    const scale = UNIT_MS[unit];
    if (scale === undefined) {
      throw new DurationError(`time: unknown unit ${quote(unit)} in duration ${quote(orig)}`);
    }
    s = s.slice(unit.length);
    total += Number(`${whole || "0"}.${frac || "0"}`) * scale;
  }
  return negative ? -total : total;
}

/**
 * The keep-alive of a request in milliseconds: `undefined` when the field is absent or null (the
 * model keeps whatever it had, or the server default), `Infinity` for "forever", otherwise >= 0.
 * Throws DurationError with the message Ollama answers in its 400.
 */
export function parseKeepAlive(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") {
    return value < 0 ? Number.POSITIVE_INFINITY : value * 1000;
  }
  if (typeof value === "string") {
    const ms = parseGoDuration(value);
    return ms < 0 ? Number.POSITIVE_INFINITY : ms;
  }
  throw new DurationError(`Unsupported type: '${goTypeName(value)}'`);
}

/** How Go's reflect names the dynamic type of a decoded JSON value. */
function goTypeName(value: unknown): string {
  if (typeof value === "boolean") return "bool";
  if (Array.isArray(value)) return "[]interface {}";
  return "map[string]interface {}";
}
