import type { Db } from "./database.js";

/** Buckets for wait, load and run durations (seconds): a model load is seconds to a minute, a wait can be hours. */
export const DURATION_BUCKETS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

export type Labels = Readonly<Record<string, string>>;

/** Prometheus' label value escaping: backslash, double quote and newline. */
const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** The label set as Prometheus renders it, keys sorted, so one series is always one row. */
export function renderLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k]!)}"`)
    .join(",");
}

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
  const observeTx = db.transaction((name: string, labels: Labels, value: number, buckets: readonly number[]) => {
    // Every bucket gets a row (0 when the value is above it), so each series has the whole bucket set.
    for (const le of buckets)
      add.run(`${name}_bucket`, renderLabels({ ...labels, le: String(le) }), value <= le ? 1 : 0);
    add.run(`${name}_bucket`, renderLabels({ ...labels, le: "+Inf" }), 1);
    add.run(`${name}_sum`, renderLabels(labels), value);
    add.run(`${name}_count`, renderLabels(labels), 1);
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
