/** Human renderings of durations, ages, sizes and times, shared by every command's tables. */

/** 850 ms, 4.2 s, 3m 05s, 2h 10m, 3d 4h. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  const abs = Math.max(0, ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  if (abs < 10_000) return `${(abs / 1000).toFixed(1)} s`;
  const seconds = Math.floor(abs / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${String(minutes % 60).padStart(2, "0")}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** Milliseconds between an ISO time and now, or null when the time is absent or unreadable. */
export function msSince(iso: string | null | undefined, now: number): number | null {
  if (!iso) return null;
  const at = Date.parse(iso);
  return Number.isNaN(at) ? null : now - at;
}

/** "3m 05s ago". */
export function formatAgo(iso: string | null | undefined, now: number): string {
  const ms = msSince(iso, now);
  return ms === null ? "-" : `${formatDuration(ms)} ago`;
}

/** Milliseconds from one ISO time to another, or null. */
export function msBetween(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from || !to) return null;
  const a = Date.parse(from);
  const b = Date.parse(to);
  return Number.isNaN(a) || Number.isNaN(b) ? null : b - a;
}

const UNITS = ["B", "kB", "MB", "GB", "TB"];

/** Decimal units, as Ollama prints model sizes: 274 MB, 2.0 GB. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "-";
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** 35 MB/s. */
export function formatRate(bytesPerSecond: number | null): string {
  return bytesPerSecond === null || !Number.isFinite(bytesPerSecond) ? "-" : `${formatBytes(bytesPerSecond)}/s`;
}

/** A countdown the way download tools print it: 0:23, 12:05, 1:02:03. */
export function formatClockDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "-:--";
  const total = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** Local date and time to the second: 2026-11-28 04:00:12. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "-";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatTimeOfDay(d)}`;
}

/** Local time of day with milliseconds, for a line of `tail`: 04:00:12.345. */
export function formatClock(iso: string | null | undefined, fallback: number): string {
  const d = iso ? new Date(iso) : new Date(fallback);
  const at = Number.isNaN(d.getTime()) ? new Date(fallback) : d;
  return `${formatTimeOfDay(at)}.${String(at.getMilliseconds()).padStart(3, "0")}`;
}

function formatTimeOfDay(d: Date): string {
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Generation speed from Ollama's metrics (eval_duration is in nanoseconds). */
export function tokensPerSecond(metrics: { eval_count?: number; eval_duration?: number } | null | undefined) {
  if (!metrics?.eval_count || !metrics.eval_duration) return null;
  return metrics.eval_count / (metrics.eval_duration / 1e9);
}

/** One line of at most `max` characters, for table cells that hold free text (errors, prompts). */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
