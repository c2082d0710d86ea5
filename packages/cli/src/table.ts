import { visibleLength } from "./style.js";

export interface Column {
  header: string;
  align?: "left" | "right";
  /** Longer cells are cut with "…" (free text such as errors). */
  maxWidth?: number;
}

export type Cell = string | number | null | undefined;

/**
 * A plain-text table like `docker ps` prints: upper-case headers, columns two spaces apart, no borders,
 * no trailing spaces. A missing value (null, undefined) shows as "-"; an empty string stays empty.
 */
export function formatTable(columns: Column[], rows: Cell[][], options: { indent?: string } = {}): string {
  const indent = options.indent ?? "";
  const cells = rows.map((row) => columns.map((column, i) => fitCell(row[i], column.maxWidth)));
  const widths = columns.map((column, i) =>
    Math.max(visibleLength(column.header), ...cells.map((row) => visibleLength(row[i] ?? ""))),
  );
  const line = (values: string[]) =>
    indent +
    values
      .map((value, i) => {
        const gap = " ".repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(value)));
        return columns[i]?.align === "right" ? gap + value : value + gap;
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join("\n");
}

/** Label/value lines with the values aligned, for one object (`job`, `status`). */
export function formatFields(fields: Array<[label: string, value: Cell]>, options: { indent?: string } = {}): string {
  const indent = options.indent ?? "";
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields
    .map(([label, value]) => `${indent}${label.padEnd(width)}  ${fitCell(value, undefined)}`.trimEnd())
    .join("\n");
}

function fitCell(value: Cell, maxWidth: number | undefined): string {
  const text = value === null || value === undefined ? "-" : String(value).replace(/\s*\n\s*/g, " ");
  if (maxWidth === undefined || visibleLength(text) <= maxWidth) return text;
  return `${text.slice(0, Math.max(1, maxWidth - 1))}…`;
}
