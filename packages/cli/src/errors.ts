import {
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  ForemanTimeoutError,
  JobFailedError,
} from "@foreman/client";
import { CliError, EXIT } from "./exit-codes.js";
import { networkDetail } from "./http.js";

export interface Failure {
  message: string;
  exitCode: number;
}

export interface FailureContext {
  /** FOREMAN_URL, for "cannot reach" messages about the jobs client's requests. */
  foremanUrl?: string | undefined;
  tokenSet?: boolean;
  /** Values that must never be printed (tokens), replaced by "[redacted]" in any message. */
  secrets: readonly string[];
}

/**
 * The one place an error becomes a message and an exit code: the CLI's own errors carry theirs, the
 * `@foreman/client` errors of the jobs API are mapped here (no answer → 3, an error answer → 1, a job that
 * ended failed or canceled → 4), anything else is a failure (1).
 */
export function describeFailure(error: unknown, context: FailureContext): Failure {
  const failure = classify(error, context);
  return { ...failure, message: scrub(failure.message, context.secrets) };
}

function classify(error: unknown, context: FailureContext): Failure {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  const foreman = context.foremanUrl ?? "FOREMAN_URL";
  if (error instanceof ForemanNetworkError) {
    return {
      message: `cannot reach foreman at ${foreman}: ${networkDetail(error.cause ?? error)}. ${FOREMAN_REACH_HINT}`,
      exitCode: EXIT.unreachable,
    };
  }
  if (error instanceof ForemanTimeoutError) {
    return { message: `foreman at ${foreman} did not answer in time: ${error.message}`, exitCode: EXIT.unreachable };
  }
  if (error instanceof ForemanHttpError) {
    const where = `foreman answered ${error.method} ${new URL(error.url).pathname} with ${error.status}`;
    if (error.status === 401) {
      return {
        message: `${where} (${error.error}): ${foremanAuthHint(context.tokenSet ?? false)}`,
        exitCode: EXIT.failure,
      };
    }
    return { message: `${error.error} (${where})`, exitCode: EXIT.failure };
  }
  if (error instanceof JobFailedError) return { message: error.message, exitCode: EXIT.jobUnsuccessful };
  if (error instanceof ForemanProtocolError) return { message: error.message, exitCode: EXIT.failure };
  const message = error instanceof Error ? error.message : String(error);
  return { message: message || "unexpected error", exitCode: EXIT.failure };
}

export const FOREMAN_REACH_HINT = "Is the gateway running, and is FOREMAN_URL its address?";

export function foremanAuthHint(tokenSet: boolean): string {
  return tokenSet
    ? "FOREMAN_API_TOKEN is not the token this gateway expects"
    : "set FOREMAN_API_TOKEN to the gateway's token";
}

export function scrub(text: string, secrets: readonly string[]): string {
  return secrets.reduce((out, secret) => out.split(secret).join("[redacted]"), text);
}
