import fs from "node:fs";
import type http from "node:http";
import path from "node:path";
import { normalizeModelName, type Store, sameModel, toJobView } from "@foreman/shared";

export interface EventFilter {
  model?: string;
  job?: string;
}

interface Cursor {
  transition: number;
  system: number;
}

/** `<transition id>-<system event id>`: one id resumes both sequences (Last-Event-ID). */
export function parseEventId(text: string | undefined): Cursor | null {
  const m = /^(\d+)-(\d+)$/.exec(text ?? "");
  return m ? { transition: Number(m[1]), system: Number(m[2]) } : null;
}

const HEARTBEAT_MS = 15_000;

/**
 * The live event stream (`GET /events`): every job transition recorded in the store (`job.<state>`, with
 * the job view) and the worker's target and model events, as Server-Sent Events. Readers wake when the
 * database's write-ahead log changes (any process's commit writes it), with a slow fallback poll, so an
 * idle stream costs nothing and a busy one reads each new row once.
 */
export function createEventStreams(deps: { store: Store; dbPath: string; pollMs?: number }) {
  const { store } = deps;
  const subscribers = new Set<() => void>();
  let watcher: fs.FSWatcher | null = null;
  let poll: NodeJS.Timeout | undefined;
  const walName = `${path.basename(deps.dbPath)}-wal`;

  const wakeAll = () => {
    for (const wake of subscribers) wake();
  };
  function startWatching(): void {
    if (watcher) return;
    try {
      watcher = fs.watch(path.dirname(deps.dbPath), (_event, file) => {
        if (file === walName) wakeAll();
      });
      watcher.on("error", () => undefined);
    } catch {
      watcher = null;
    }
    poll = setInterval(wakeAll, deps.pollMs ?? 1000);
    poll.unref();
  }
  function stopWatching(): void {
    watcher?.close();
    watcher = null;
    clearInterval(poll);
  }

  /** Writes the events after `cursor` that pass the filter; returns the new cursor. */
  function flush(res: http.ServerResponse, cursor: Cursor, filter: EventFilter): Cursor {
    const next = { ...cursor };
    let out = "";
    for (;;) {
      const rows = store.jobs.transitionsAfter(next.transition, 500);
      const views = new Map<string, ReturnType<typeof toJobView> | null>();
      for (const t of rows) {
        next.transition = t.id;
        if (filter.job && t.job_id !== filter.job) continue;
        if (!views.has(t.job_id)) {
          const job = store.jobs.getForView(t.job_id);
          views.set(t.job_id, job ? toJobView(job, { artifacts: store.artifacts.forJob(job.id) }) : null);
        }
        const view = views.get(t.job_id);
        if (!view || (filter.model && !sameModel(view.model, filter.model))) continue;
        const data = {
          ...view,
          state: t.to_state,
          transition: { from: t.from_state, to: t.to_state, at: new Date(t.at).toISOString(), reason: t.reason },
        };
        out += `id: ${next.transition}-${next.system}\nevent: job.${t.to_state}\ndata: ${JSON.stringify(data)}\n\n`;
      }
      if (rows.length < 500) break;
    }
    for (const e of store.systemEvents.after(next.system, 500)) {
      next.system = e.id;
      if (filter.job) continue;
      const model = typeof e.data.model === "string" ? e.data.model : undefined;
      if (filter.model && (model === undefined || !sameModel(model, filter.model))) continue;
      const data = { at: new Date(e.at).toISOString(), ...e.data };
      out += `id: ${next.transition}-${next.system}\nevent: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`;
    }
    if (out) res.write(out);
    return next;
  }

  return {
    /** Streams events to `res` until the caller goes away (or `signal` aborts, as a shutdown does). */
    serve(res: http.ServerResponse, filter: EventFilter, resumeFrom: Cursor | null, signal: AbortSignal): void {
      const wanted = { ...filter, ...(filter.model ? { model: normalizeModelName(filter.model) } : {}) };
      let cursor = resumeFrom ?? {
        transition: store.jobs.lastTransitionId(),
        system: store.systemEvents.lastId(),
      };
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      });
      res.write(": connected\n\n");
      let scheduled = false;
      const wake = () => {
        if (scheduled) return;
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          try {
            cursor = flush(res, cursor, wanted);
          } catch {
            // A busy database: the next wake-up reads the same rows again.
          }
        });
      };
      const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
      const end = () => {
        clearInterval(heartbeat);
        subscribers.delete(wake);
        if (subscribers.size === 0) stopWatching();
        if (!res.writableEnded) res.end();
      };
      res.on("close", end);
      signal.addEventListener("abort", end, { once: true });
      subscribers.add(wake);
      startWatching();
      wake();
    },
    close(): void {
      stopWatching();
    },
  };
}

export type EventStreams = ReturnType<typeof createEventStreams>;
