/**
 * The exit codes scripts can rely on. Every command ends with one of these; `README.md` of this package
 * lists them for users.
 */
export const EXIT = {
  /** It worked (for `status`: foreman answered and the target is up). */
  ok: 0,
  /** The operation failed: an error answer (404, 409, 401, …), a failed check, a failed backup. */
  failure: 1,
  /** The command line itself is wrong: unknown command or option, a bad value, a missing argument. */
  usage: 2,
  /** foreman (FOREMAN_URL) or the target (FOREMAN_OLLAMA_URL) could not be reached, or did not answer in time. */
  unreachable: 3,
  /** `run`: the job ended `failed` or `canceled`. */
  jobUnsuccessful: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one line on stderr and an exit code. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
  }
}

/** A bad command line: exit 2. */
export class UsageError extends CliError {
  override name = "UsageError";
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** foreman or the target did not answer at all: exit 3. */
export class UnreachableError extends CliError {
  override name = "UnreachableError";
  constructor(message: string) {
    super(message, EXIT.unreachable);
  }
}
