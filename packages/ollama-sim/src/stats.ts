import type { IncomingMessage } from "node:http";
import type { SimClock } from "./clock.js";
import { formatGoTime } from "./go-time.js";
import type { CountByName, RequestLogEntry, SimStats } from "./interfaces.js";

/** One request while it is being served: its log entry plus what the handlers learn on the way. */
export interface CallRecord {
  entry: RequestLogEntry;
  startedAt: number;
  /** The connection closed before the response was complete. */
  closed: boolean;
  /** The simulator itself cut the connection (fault or shutdown): not a client abort. */
  killedByServer: boolean;
  /** Run once when the connection closes early; handlers use it to stop waiting. */
  onClose: Set<() => void>;
}

class Counter {
  total = 0;
  byName = new Map<string, number>();

  add(name: string): void {
    this.total++;
    this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
  }

  toJSON(): CountByName {
    return { total: this.total, byModel: Object.fromEntries(this.byName) };
  }
}

const LOGGED_HEADERS = new Set(["authorization", "user-agent", "content-type", "accept"]);

/** Counters and bounded logs behind stats() and GET /_sim/stats. */
export class StatsRecorder {
  private startedAt: number;
  private requestsTotal = 0;
  private readonly byRoute = new Map<string, number>();
  private inFlight = 0;
  private abortedTotal = 0;
  private readonly abortedByPath = new Map<string, number>();
  private loads = new Counter();
  private unloads = new Counter();
  private evictions = new Counter();
  private faults = { hung: 0, diedMidStream: 0, slowedFirstToken: 0, refusals: 0, connectionsDestroyed: 0 };
  private authorizations: Array<string | null> = [];
  private log: RequestLogEntry[] = [];
  private nextId = 1;

  constructor(
    private readonly clock: SimClock,
    private readonly logSize: number,
  ) {
    this.startedAt = clock.now();
  }

  begin(req: IncomingMessage, path: string, route: string): CallRecord {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      if (LOGGED_HEADERS.has(name) || name.startsWith("x-")) {
        headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
    }
    const now = this.clock.now();
    const entry: RequestLogEntry = {
      id: this.nextId++,
      at: formatGoTime(now, true),
      method: req.method ?? "GET",
      path,
      route,
      headers,
      finished: false,
      aborted: false,
    };
    this.requestsTotal++;
    this.byRoute.set(route, (this.byRoute.get(route) ?? 0) + 1);
    this.inFlight++;
    this.push(this.authorizations, req.headers.authorization ?? null);
    this.push(this.log, entry);
    return { entry, startedAt: now, closed: false, killedByServer: false, onClose: new Set() };
  }

  /** Called once per request when its response is complete or its connection is gone. */
  finish(call: CallRecord, status: number, completed: boolean): void {
    this.inFlight--;
    call.entry.status = status;
    call.entry.finished = completed;
    call.entry.durationMs = Math.round((this.clock.now() - call.startedAt) * 1000) / 1000;
    if (!completed && !call.killedByServer) {
      call.entry.aborted = true;
      this.abortedTotal++;
      this.abortedByPath.set(call.entry.path, (this.abortedByPath.get(call.entry.path) ?? 0) + 1);
    }
  }

  recordLoad(model: string): void {
    this.loads.add(model);
  }

  recordUnload(model: string, evicted: boolean): void {
    this.unloads.add(model);
    if (evicted) this.evictions.add(model);
  }

  recordFault(kind: keyof SimStats["faults"], times = 1): void {
    this.faults[kind] += times;
  }

  snapshot(): SimStats {
    return {
      startedAt: formatGoTime(this.startedAt, true),
      requests: { total: this.requestsTotal, byRoute: Object.fromEntries(this.byRoute) },
      inFlight: this.inFlight,
      aborted: { total: this.abortedTotal, byPath: Object.fromEntries(this.abortedByPath) },
      loads: this.loads.toJSON(),
      unloads: this.unloads.toJSON(),
      evictions: this.evictions.toJSON(),
      faults: { ...this.faults },
      lastAuthorizations: [...this.authorizations],
      recentRequests: this.log.map((entry) => ({ ...entry, headers: { ...entry.headers } })),
    };
  }

  /** Zeroes every counter and empties the logs; requests still in flight stay counted in inFlight. */
  reset(): void {
    this.startedAt = this.clock.now();
    this.requestsTotal = 0;
    this.byRoute.clear();
    this.abortedTotal = 0;
    this.abortedByPath.clear();
    this.loads = new Counter();
    this.unloads = new Counter();
    this.evictions = new Counter();
    this.faults = { hung: 0, diedMidStream: 0, slowedFirstToken: 0, refusals: 0, connectionsDestroyed: 0 };
    this.authorizations = [];
    this.log = [];
  }

  private push<T>(ring: T[], value: T): void {
    ring.push(value);
    if (ring.length > this.logSize) ring.shift();
  }
}
