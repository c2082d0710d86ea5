import type { Db } from "./database.js";

/** Buckets for wait, load and run durations (seconds): a model load is seconds to a minute, a wait can be hours. */
export const DURATION_BUCKETS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

export type Labels = Readonly<Record<string, string>>;

/** Prometheus' label value escaping: backslash, double quote and newline. */
const escapeLabel = (value: string) =>
  NEEDS_ESCAPE.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
const NEEDS_ESCAPE = /[\\"\n]/;

/**
 * The label set as Prometheus renders it, keys sorted, so one series is always one row. Built without
 * intermediate arrays: it runs inside every job's state transitions.
 */
export function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length > 1) keys.sort();
  let out = "";
  for (const k of keys) out += `${out.length > 0 ? "," : ""}${k}="${escapeLabel(labels[k]!)}"`;
  return out;
}

/** A histogram series' bucket rows: each bucket's bound and its rendered labels (`le` included). */
type BucketRows = ReadonlyArray<{ le: number; labels: string }>;

/** Series rendered once per process: a busy worker observes the same few (one per model) thousands of times. */
const MAX_CACHED_SERIES = 10_000;

export interface MetricRow {
  name: string;
  labels: string;
  value: number;
}

/**
 * Counters, gauges and histograms recorded in SQLite. Each write is one upsert that joins the caller's
 * transaction when there is one (a state transition records its durations in the move's own transaction),
 * so what is counted and the count cannot disagree after a crash.
 */
export function createMetricsStore(db: Db) {
  const add = db.prepare(
    `INSERT INTO metric_counters (name, labels, value) VALUES (?, ?, ?)
     ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value`,
  );
  const put = db.prepare(
    `INSERT INTO metric_counters (name, labels, value) VALUES (?, ?, ?)
     ON CONFLICT (name, labels) DO UPDATE SET value = excluded.value`,
  );
  const all = db.prepare<[], MetricRow>("SELECT name, labels, value FROM metric_counters ORDER BY name, labels");
  // A bucket the value is above gets its row if it has none, and no write when it has one.
  const ensure = db.prepare(
    `INSERT INTO metric_counters (name, labels, value) VALUES (?, ?, 0) ON CONFLICT (name, labels) DO NOTHING`,
  );
  const seriesByBuckets = new WeakMap<readonly number[], Map<string, BucketRows>>();
  function bucketRows(name: string, labels: Labels, base: string, buckets: readonly number[]): BucketRows {
    let series = seriesByBuckets.get(buckets);
    if (!series) {
      series = new Map();
      seriesByBuckets.set(buckets, series);
    }
    const key = `${name}\n${base}`;
    let rows = series.get(key);
    if (!rows) {
      rows = [...buckets, Number.POSITIVE_INFINITY].map((le) => ({
        le,
        labels: renderLabels({ ...labels, le: le === Number.POSITIVE_INFINITY ? "+Inf" : String(le) }),
      }));
      if (series.size >= MAX_CACHED_SERIES) series.clear();
      series.set(key, rows);
    }
    return rows;
  }
  const observeTx = db.transaction((name: string, labels: Labels, value: number, buckets: readonly number[]) => {
    const base = renderLabels(labels);
    const bucket = `${name}_bucket`;
    // Every bucket gets a row (0 while the value is above it), so each series has the whole bucket set.
    for (const row of bucketRows(name, labels, base, buckets)) {
      if (value <= row.le) add.run(bucket, row.labels, 1);
      else ensure.run(bucket, row.labels);
    }
    add.run(`${name}_sum`, base, value);
    add.run(`${name}_count`, base, 1);
  });
  return {
    increment(name: string, labels: Labels = {}, by = 1): void {
      add.run(name, renderLabels(labels), by);
    },
    set(name: string, labels: Labels, value: number): void {
      put.run(name, renderLabels(labels), value);
    },
    /** One observation of a histogram (cumulative buckets, sum and count). */
    observe(name: string, labels: Labels, value: number, buckets: readonly number[] = DURATION_BUCKETS): void {
      observeTx(name, labels, value, buckets);
    },
    rows(): MetricRow[] {
      return all.all();
    },
  };
}

export type MetricsStore = ReturnType<typeof createMetricsStore>;
