import path from "node:path";
import Database from "better-sqlite3";
import { canTransition, isJobState, isTerminal, type JobState } from "../../packages/shared/src/job-states.js";
import { retainNativeHandles } from "../../packages/shared/src/store/database.js";
import type { FlappingReceiver } from "./flapping-receiver.js";

export interface JobRow {
  id: string;
  state: string;
  mode: string;
  model: string;
  attempts: number;
  error: string | null;
  webhook_url: string | null;
  webhook_events: string | null;
}
export interface TransitionRow {
  job_id: string;
  from_state: string | null;
  to_state: string;
  attempt: number;
  reason: string | null;
}
export interface OutboxRow {
  job_id: string;
  event_id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_error: string | null;
}

export interface DbFacts {
  jobs: JobRow[];
  history: Map<string, TransitionRow[]>;
  outbox: Map<string, OutboxRow[]>;
}

/** Read-only, as an operator would with sqlite3; safe beside running gateways and a worker (WAL). */
export function openFacts(dataDir: string) {
  const db = retainNativeHandles(
    new Database(path.join(dataDir, "foreman.db"), { readonly: true, fileMustExist: true, timeout: 5000 }),
  );
  const unsettled = db.prepare(
    `SELECT (SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done', 'failed', 'canceled')) AS running,
            (SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending') AS pending`,
  );
  const jobs = db.prepare(
    "SELECT id, state, mode, model, attempts, error, webhook_url, webhook_events FROM jobs ORDER BY id",
  );
  const transitions = db.prepare(
    "SELECT job_id, from_state, to_state, attempt, reason FROM job_transitions ORDER BY job_id, id",
  );
  const outbox = db.prepare(
    "SELECT job_id, event_id, event_type, status, attempts, last_error FROM webhook_outbox ORDER BY job_id, id",
  );
  const group = <T extends { job_id: string }>(rows: T[]) => {
    const map = new Map<string, T[]>();
    for (const row of rows) {
      const list = map.get(row.job_id) ?? [];
      list.push(row);
      map.set(row.job_id, list);
    }
    return map;
  };
  return {
    /** Jobs not yet ended and webhook events not yet delivered. */
    unsettled: () => unsettled.get() as { running: number; pending: number },
    read(): DbFacts {
      return {
        jobs: jobs.all() as JobRow[],
        history: group(transitions.all() as TransitionRow[]),
        outbox: group(outbox.all() as OutboxRow[]),
      };
    },
    eventIds(): string[] {
      return (db.prepare("SELECT event_id FROM webhook_outbox").all() as Array<{ event_id: string }>).map(
        (r) => r.event_id,
      );
    },
    close: () => db.close(),
  };
}

export const describeHistory = (rows: TransitionRow[]) =>
  rows.map((r) => `${r.from_state ?? "∅"}→${r.to_state}#${r.attempt}${r.reason ? ` (${r.reason})` : ""}`).join(", ");

/**
 * Every job in the database ended exactly once, through legal moves only, and its row agrees with its
 * history; every job a caller was told about is there.
 */
export function checkJobs(facts: DbFacts, accepted: ReadonlySet<string>): string[] {
  const violations: string[] = [];
  const known = new Set(facts.jobs.map((j) => j.id));
  for (const id of accepted) {
    if (!known.has(id)) violations.push(`job ${id} was accepted but is not in the database`);
  }
  for (const job of facts.jobs) {
    const rows = facts.history.get(job.id) ?? [];
    const where = `job ${job.id} (${job.mode}, ${job.model}, state ${job.state}; history: ${describeHistory(rows)})`;
    if (!isJobState(job.state) || !isTerminal(job.state)) {
      violations.push(`${where} did not reach a terminal state`);
    }
    if (rows.length === 0 || rows[0]!.from_state !== null || rows[0]!.to_state !== "queued") {
      violations.push(`${where}: history does not start with its creation (∅→queued)`);
    }
    for (let i = 1; i < rows.length; i++) {
      const prev = rows[i - 1]!;
      const row = rows[i]!;
      if (row.from_state !== prev.to_state) {
        violations.push(`${where}: transition ${i} starts from ${row.from_state}, but the job was ${prev.to_state}`);
      }
      const from = row.from_state;
      if (!isJobState(from) || !isJobState(row.to_state) || !canTransition(from, row.to_state)) {
        violations.push(`${where}: illegal transition ${from}→${row.to_state}`);
      }
    }
    const terminal = rows.filter((r) => isJobState(r.to_state) && isTerminal(r.to_state as JobState));
    if (terminal.length > 1) violations.push(`${where}: entered a terminal state ${terminal.length} times`);
    if (rows.length > 0 && rows.at(-1)!.to_state !== job.state) {
      violations.push(`${where}: the row says ${job.state} but the last transition entered ${rows.at(-1)!.to_state}`);
    }
  }
  return violations;
}

/**
 * Every event the history implies is in the outbox in history order, was delivered, and reached the
 * receiver validly signed, first received in the job's order; nothing arrived that the outbox does not hold.
 */
export function checkWebhooks(
  facts: DbFacts,
  receiver: Pick<FlappingReceiver, "accepted" | "acceptedByJob" | "invalid">,
): string[] {
  const violations: string[] = [];
  const known = new Set<string>();
  for (const job of facts.jobs) {
    if (!job.webhook_url) continue;
    const filter = job.webhook_events ? (JSON.parse(job.webhook_events) as string[]) : null;
    const expected = (facts.history.get(job.id) ?? [])
      .map((r) => `job.${r.to_state}`)
      .filter((type) => !filter || filter.includes(type));
    const rows = facts.outbox.get(job.id) ?? [];
    for (const row of rows) known.add(row.event_id);
    const recorded = rows.map((r) => r.event_type);
    if (recorded.join(",") !== expected.join(",")) {
      violations.push(`job ${job.id}: outbox events [${recorded}] do not follow its history [${expected}]`);
    }
    for (const row of rows) {
      if (row.status !== "delivered") {
        violations.push(
          `job ${job.id}: event ${row.event_id} (${row.event_type}) is ${row.status} after ${row.attempts} attempts (${row.last_error})`,
        );
      }
      const got = receiver.accepted.get(row.event_id);
      if (!got) {
        violations.push(`job ${job.id}: event ${row.event_id} (${row.event_type}) never reached the receiver`);
        continue;
      }
      if (got.jobId !== job.id || got.type !== row.event_type || `job.${got.state}` !== row.event_type) {
        violations.push(
          `job ${job.id}: event ${row.event_id} arrived as ${got.type} for job ${got.jobId} in state ${got.state}, recorded as ${row.event_type}`,
        );
      }
    }
    const order = (receiver.acceptedByJob.get(job.id) ?? []).filter((id) => rows.some((r) => r.event_id === id));
    const outboxOrder = rows.map((r) => r.event_id).filter((id) => receiver.accepted.has(id));
    if (order.join(",") !== outboxOrder.join(",")) {
      const types = (ids: string[]) => ids.map((id) => receiver.accepted.get(id)?.type).join(",");
      violations.push(
        `job ${job.id}: events first received out of order: [${types(order)}], recorded [${types(outboxOrder)}]`,
      );
    }
  }
  for (const [eventId, event] of receiver.accepted) {
    if (!known.has(eventId))
      violations.push(`the receiver got event ${eventId} (${event.type}, job ${event.jobId}) that no outbox row holds`);
  }
  for (const bad of receiver.invalid) {
    violations.push(`a delivery to ${bad.path} (event ${bad.eventId}) failed verification: ${bad.error}`);
  }
  return violations;
}
