import { UnavailableError } from "@foreman/shared";
import type { RequestHandler } from "express";

export interface ConcurrencyLimit {
  /** Requests holding a slot now. */
  readonly active: number;
  /** Express middleware: takes a slot for the life of the response, or refuses with a 503. */
  readonly middleware: RequestHandler;
}

/**
 * A counting semaphore over requests that stay open (long polls, stream followers): each holds a slot
 * from the moment it is admitted until its response finishes or its connection closes, whichever comes
 * first, and a request that finds every slot taken is refused at once with a 503 and Retry-After, before
 * its handler reads anything. `applies` picks the requests that count (a GET without ?wait= is not a
 * long poll).
 */
export function concurrencyLimit(options: {
  max: number;
  /** Names the limit in the refusal, e.g. "long polls". */
  what: string;
  /** The configuration key that raises it. */
  key: string;
  retryAfterSeconds: number;
  applies?: (req: Parameters<RequestHandler>[0]) => boolean;
}): ConcurrencyLimit {
  let active = 0;
  const middleware: RequestHandler = (req, res, next) => {
    if (options.applies && !options.applies(req)) return next();
    if (active >= options.max) {
      next(
        new UnavailableError(
          `too many concurrent ${options.what} (${options.key}=${options.max}); retry later`,
          options.retryAfterSeconds,
        ),
      );
      return;
    }
    active++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      active--;
    };
    res.once("finish", release);
    res.once("close", release);
    next();
  };
  return {
    get active() {
      return active;
    },
    middleware,
  };
}
