import { IllegalTransitionError } from "./errors.js";

/**
 * The job state machine: queued → loading → working → done | failed | canceled. This module is the only owner of which states exist, which moves
 * between them are legal and which webhook event each state emits; the store applies transitions through
 * `assertTransition` inside the same transaction that writes the history row and the outbox row.
 */
export const JOB_STATES = ["queued", "loading", "working", "done", "failed", "canceled"] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_STATES = ["done", "failed", "canceled"] as const satisfies readonly JobState[];
/** A state a job never leaves. */
export type TerminalState = (typeof TERMINAL_STATES)[number];

const ALLOWED: Readonly<Record<JobState, readonly JobState[]>> = {
  // A queued job is claimed (loading) or canceled before it starts. It never fails without running:
  // failures come from the worker, which must have claimed it first.
  queued: ["loading", "canceled"],
  // Back to queued when the target was unreachable before it answered (no attempt is spent) or the
  // worker was interrupted; failed when the target refused the job (unknown model, bad request).
  loading: ["working", "queued", "failed", "canceled"],
  // Back to queued when generation was interrupted and attempts remain.
  working: ["done", "queued", "failed", "canceled"],
  done: [],
  failed: [],
  canceled: [],
};

export type JobEventType = `job.${JobState}`;

export function isJobState(value: unknown): value is JobState {
  return typeof value === "string" && (JOB_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: JobState): state is TerminalState {
  return (TERMINAL_STATES as readonly JobState[]).includes(state);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return ALLOWED[from].includes(to);
}

export function assertTransition(from: JobState, to: JobState, jobId?: string): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to, jobId);
}

/** Every state entered emits exactly one event, named after the state. */
export function eventForState(state: JobState): JobEventType {
  return `job.${state}`;
}

export const JOB_EVENT_TYPES: readonly JobEventType[] = JOB_STATES.map(eventForState);
