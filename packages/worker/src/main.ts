import {
  createLoggerFromConfig,
  handleShutdownSignals,
  loadConfigOrExit,
  openStore,
  redactConfig,
} from "@foreman/shared";
import { createLeadership } from "./leadership.js";
import { createTargetClient } from "./target-client.js";
import { createTargetPoller } from "./target-poller.js";

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

const client = createTargetClient({
  baseUrl: config.ollamaUrl,
  token: config.ollamaToken,
  timeoutMs: Math.max(config.connectTimeoutMs, 1000),
});
const poller = createTargetPoller({ client, store, logger, intervalMs: config.pollMs, embedModel: config.embedModel });

// Only the active worker talks to the target; a standby stays silent until it takes over.
const leadership = createLeadership({
  store,
  logger,
  heartbeatMs: config.heartbeatMs,
  onActive: () => poller.start(),
  onLost: () => void poller.stop(),
});
leadership.start();

handleShutdownSignals(logger, async () => {
  await poller.stop();
  leadership.stop();
  client.close();
  store.close();
});
