import { type ForemanConfig, loadConfig } from "./config.js";
import { ConfigError } from "./errors.js";
import type { Logger } from "./logger.js";
import { openStore, type Store, type StoreOptions } from "./store/store.js";

/**
 * Reads the configuration or ends the process with one line naming the variable, the value's problem and
 * an example of a good one, and exit code 2, the conventional code for a usage error.
 */
export function loadConfigOrExit(service: string, env: NodeJS.ProcessEnv = process.env): ForemanConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`foreman ${service}: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Opens the store as the configuration says (applying pending migrations) and logs what it migrated. */
export function openConfiguredStore(
  config: ForemanConfig,
  logger: Logger,
  onTransition: StoreOptions["onTransition"],
): Store {
  const store = openStore({
    dbPath: config.dbPath,
    synchronous: config.dbSynchronous,
    workerStaleMs: config.workerStaleMs,
    defaultMaxAttempts: config.maxAttempts,
    onTransition,
  });
  if (store.migration.applied.length > 0) {
    logger.info("database migrated", { from: store.migration.from, to: store.migration.to, db: config.dbPath });
  }
  return store;
}

/**
 * Runs `stop` once on SIGTERM or SIGINT, then exits 0; a second signal or a stop that overruns
 * `timeoutMs` exits 1 at once, so an orchestrator is never left waiting on a wedged process.
 */
export function handleShutdownSignals(
  logger: Logger,
  stop: (signal: string) => Promise<void>,
  timeoutMs = 15_000,
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn("second signal during shutdown; exiting now", { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info("shutting down", { signal });
    const timer = setTimeout(() => {
      logger.error("shutdown timed out; exiting", { timeout_ms: timeoutMs });
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop(signal).then(
      () => {
        logger.info("stopped cleanly");
        // Let winston flush its last line before the process ends.
        setImmediate(() => process.exit(0));
      },
      (err: unknown) => {
        logger.error("error during shutdown", { error: (err as Error)?.stack ?? String(err) });
        setImmediate(() => process.exit(1));
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
