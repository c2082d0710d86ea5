/**
 * Typed errors shared by gateway and worker. Each carries the HTTP status it maps to; the gateway's one
 * error handler turns any of them into Ollama's `{"error": "..."}` shape.
 */
export class ForemanError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}

/** The caller sent something we cannot accept; the message names the field. */
export class ValidationError extends ForemanError {
  constructor(message: string) {
    super(message, 400);
  }
}

export class UnauthorizedError extends ForemanError {
  constructor(message = "unauthorized") {
    super(message, 401);
  }
}

export class ForbiddenError extends ForemanError {
  constructor(message: string) {
    super(message, 403);
  }
}

export class NotFoundError extends ForemanError {
  constructor(message: string) {
    super(message, 404);
  }
}

/** The request is valid but conflicts with the current state (e.g. cancel of an ended job). */
export class ConflictError extends ForemanError {
  constructor(message: string) {
    super(message, 409);
  }
}

/** A state change that the job state machine does not allow. */
export class IllegalTransitionError extends ForemanError {
  readonly from: string;
  readonly to: string;
  constructor(from: string, to: string, jobId?: string) {
    super(`illegal job transition ${from} -> ${to}${jobId ? ` for job ${jobId}` : ""}`, 409);
    this.from = from;
    this.to = to;
  }
}

/**
 * A bound is reached (the queue is full, too many long polls): the request was fine and may succeed later,
 * so it is a 503 that says when to try again (`Retry-After`, in seconds).
 */
export class UnavailableError extends ForemanError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message, 503);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A FOREMAN_* variable holds a bad value; the message is the one line printed before exiting. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
