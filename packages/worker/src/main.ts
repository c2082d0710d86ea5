import {
  createLoggerFromConfig,
  handleShutdownSignals,
  loadConfigOrExit,
  openStore,
  redactConfig,
} from "@foreman/shared";
import { createLeadership } from "./leadership.js";

const config = loadConfigOrExit("worker");
const logger = createLoggerFromConfig(config, "worker");
const store = openStore({
  dbPath: config.dbPath,
  synchronous: config.dbSynchronous,
  workerStaleMs: config.workerStaleMs,
});
if (store.migration.applied.length > 0) {
  logger.info("database migrated", { from: store.migration.from, to: store.migration.to, db: config.dbPath });
}
logger.info("worker starting", { pid: process.pid, config: redactConfig(config) });

const leadership = createLeadership({ store, logger, heartbeatMs: config.heartbeatMs });
leadership.start();

handleShutdownSignals(logger, async () => {
  leadership.stop();
  store.close();
});
