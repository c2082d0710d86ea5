import { type ForemanConfig, loadConfig, redactConfig } from "./config.js";
import { ConfigError } from "./errors.js";
import { createLoggerFromConfig, type Logger } from "./logger.js";
import { type DatabaseFileWatch, watchDatabaseFile } from "./store/db-file-watch.js";
import { openStore, type Store, type StoreOptions } from "./store/store.js";

/**
 * Files a foreman process creates (database, relays, artifacts, the wake file) and the directories that hold
 * them are its owner's alone: prompts and answers are private. Called first thing at start, so it covers
 * every file whichever module creates it.
 */
export function restrictNewFilesToOwner(): void {
  process.umask(0o077);
}

/**
 * Watches the database file (see watchDatabaseFile) and ends the process with one error line and exit code 1
 * when it is deleted or replaced: going on would write into a file no other process reads. A supervisor
 * that restarts it opens whatever file is at the path then, as every other process will.
 */
export function exitWhenDatabaseFileLost(
  config: Pick<ForemanConfig, "dbPath" | "dbCheckMs">,
  logger: Logger,
): DatabaseFileWatch {
  const watch = watchDatabaseFile({
    path: config.dbPath,
    intervalMs: config.dbCheckMs,
    onLost: (problem) => {
      logger.error(`${problem}; stopping (restart to open the database at that path)`);
      // Let winston write the line before the process ends.
      setImmediate(() => process.exit(1));
    },
  });
  watch.start();
  return watch;
}

/**
 * What both processes do first, in order: own-only files, the configuration (or exit 2), the logger, the
 * store (migrating it, and saying so), and the watch that stops the process if its database file is lost.
 */
export function startProcess(
  service: "gateway" | "worker",
  onTransition: (logger: Logger) => StoreOptions["onTransition"],
) {
  restrictNewFilesToOwner();
  const config = loadConfigOrExit(service);
  const logger = createLoggerFromConfig(config, service);
  const store = openConfiguredStore(config, logger, onTransition(logger));
  const databaseFile = exitWhenDatabaseFileLost(config, logger);
  logger.debug("configuration", { config: redactConfig(config) });
  return { config, logger, store, databaseFile };
}

/**
 * Reads the configuration or ends the process with one line (the variable, what is wrong with its value, and
 * an example of a good one) and exit code 2, the conventional code for a usage error.
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
    drainByRunnerOptions: config.drainByRunnerOptions,
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
