import type { OutputStream } from "./io.js";

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
}

const plain: Style = { bold: id, dim: id, green: id, red: id, yellow: id };

/** ANSI colours on a terminal only, and never when NO_COLOR is set (https://no-color.org). */
export function styleFor(stream: OutputStream, env: Readonly<Record<string, string | undefined>>): Style {
  if (!stream.isTTY || (env.NO_COLOR !== undefined && env.NO_COLOR !== "") || env.TERM === "dumb") return plain;
  const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
  return { bold: sgr(1, 22), dim: sgr(2, 22), green: sgr(32, 39), red: sgr(31, 39), yellow: sgr(33, 39) };
}

function id(text: string): string {
  return text;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes begin with ESC
const ANSI = /\x1b\[[0-9;]*m/g;

/** The width a terminal shows: colour codes take none. */
export function visibleLength(text: string): number {
  return text.replace(ANSI, "").length;
}
