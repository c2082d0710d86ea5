import { delay } from "./deadline.js";
import { ForemanHttpError, ForemanNetworkError, ForemanTimeoutError } from "./errors.js";

/**
 * Retries of requests that are safe to repeat: the long polls of `wait`, and a submit that carries an
 * Idempotency-Key (the server answers a repeated key with the job it already made). A gateway restart
 * loses nothing but its open connections (jobs live in the database), so a waiting caller should ride it out.
 */
export interface RetryOptions {
  /** Further attempts after the first; 0 turns retries off. Default 5. */
  retries?: number;
  /** First backoff delay; it doubles each time, with jitter. Default 250 ms. */
  minDelayMs?: number;
  /** Largest backoff delay. Default 5000 ms. */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({ retries: 5, minDelayMs: 250, maxDelayMs: 5_000 });

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  return Object.freeze({ ...DEFAULT_RETRY_POLICY, ...definedOnly(options ?? {}) });
}

/** A failure that says nothing about the request itself: no answer, or a gateway that is not up yet. */
export function isTransient(error: unknown): boolean {
  if (error instanceof ForemanNetworkError || error instanceof ForemanTimeoutError) return true;
  return error instanceof ForemanHttpError && (error.status === 502 || error.status === 503 || error.status === 504);
}

/** Exponential backoff with "equal jitter": between half and all of `min * 2^attempt`, capped at `max`. */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Runs `operation`, repeating it after transient failures; the backoff ends early when `signal` aborts. */
export async function withRetries<T>(
  operation: () => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      // An abort that raced the failure is the caller's news, whatever the request died of.
      if (signal?.aborted) throw signal.reason;
      if (attempt >= policy.retries || !isTransient(error)) throw error;
      await delay(retryDelayMs(attempt, policy), signal);
    }
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
