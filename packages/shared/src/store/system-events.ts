import type { Db } from "./database.js";

export type SystemEventType = "target.up" | "target.down" | "model.loaded" | "model.unloaded";

export interface SystemEvent {
  id: number;
  type: SystemEventType;
  data: Record<string, unknown>;
  at: number;
}

/** How many target and model events are kept: the live stream needs the recent ones only. */
const KEEP = 1000;

/**
 * Target and model events the worker records (up, down, loaded, unloaded) for the gateways' live event
 * stream. Only the latest are kept: a reader that fell further behind has missed them, as with any tail.
 */
export function createSystemEventsStore(db: Db, now: () => number = Date.now) {
  const insert = db.prepare("INSERT INTO system_events (type, data, at) VALUES (?, ?, ?)");
  const trim = db.prepare("DELETE FROM system_events WHERE id <= ?");
  const after = db.prepare<[number, number], { id: number; type: SystemEventType; data: string; at: number }>(
    "SELECT id, type, data, at FROM system_events WHERE id > ? ORDER BY id LIMIT ?",
  );
  const last = db.prepare<[], { id: number }>("SELECT COALESCE(MAX(id), 0) AS id FROM system_events");
  const latestTarget = db.prepare<[], { type: SystemEventType; at: number }>(
    "SELECT type, at FROM system_events WHERE type IN ('target.up', 'target.down') ORDER BY id DESC LIMIT 1",
  );
  return {
    record(type: SystemEventType, data: Record<string, unknown>): void {
      const id = Number(insert.run(type, JSON.stringify(data), now()).lastInsertRowid);
      if (id % 100 === 0) trim.run(id - KEEP);
    },
    after(id: number, limit = 500): SystemEvent[] {
      return after.all(id, limit).map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
    },
    /** The latest target up or down event: since when the target is in its current state. */
    latestTargetChange(): { type: SystemEventType; at: number } | null {
      return latestTarget.get() ?? null;
    },
    lastId(): number {
      return last.get()?.id ?? 0;
    },
  };
}

export type SystemEventsStore = ReturnType<typeof createSystemEventsStore>;
