/**
 * Timestamps and durations printed the way Go prints them, because clients and proxies parse
 * Ollama's output and foreman's tests compare it.
 */

/** The largest Go `time.Duration` (math.MaxInt64 nanoseconds) in milliseconds: ~292 years. */
export const MAX_GO_DURATION_MS = Number(2n ** 63n - 1n) / 1e6;

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}

/**
 * RFC 3339 with up to nine fractional digits, trailing zeros trimmed (Go's time.RFC3339Nano, the
 * JSON form of time.Time). `utc` prints "Z" (Ollama stamps `created_at` with time.Now().UTC());
 * otherwise the process's local offset is used, as for `expires_at` and `modified_at`.
 */
export function formatGoTime(epochMs: number, utc: boolean): string {
  const wholeMs = Math.floor(epochMs);
  const date = new Date(wholeMs);
  // Round to microseconds: a double holding epoch milliseconds has no finer precision.
  const micros = Math.round((epochMs - Math.floor(wholeMs / 1000) * 1000) * 1000);
  let fraction = "";
  if (micros > 0 && micros < 1_000_000) {
    fraction = `.${pad(micros, 6)}`.replace(/0+$/, "");
  }
  if (utc) {
    return (
      `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}` +
      `T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}${fraction}Z`
    );
  }
  const offsetMinutes = -date.getTimezoneOffset();
  let zone = "Z";
  if (offsetMinutes !== 0) {
    const sign = offsetMinutes > 0 ? "+" : "-";
    const abs = Math.abs(offsetMinutes);
    zone = `${sign}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`;
  }
  return (
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1, 2)}-${pad(date.getDate(), 2)}` +
    `T${pad(date.getHours(), 2)}:${pad(date.getMinutes(), 2)}:${pad(date.getSeconds(), 2)}${fraction}${zone}`
  );
}

/** Milliseconds to integer nanoseconds, the unit of every Ollama duration field. */
export function msToNs(ms: number): number {
  return Math.max(0, Math.round(ms * 1e6));
}
