import type { AddressInfo } from "node:net";
import {
  createLoggerFromConfig,
  createWaker,
  exitWhenDatabaseFileLost,
  handleShutdownSignals,
  loadConfigOrExit,
  logTransitions,
  openStore,
  redactConfig,
  restrictNewFilesToOwner,
} from "@foreman/shared";
import { createRequestListener } from "./app.js";
import { createTargetProxy } from "./proxy/target-proxy.js";
import { createGatewayServer } from "./server.js";

restrictNewFilesToOwner();
const config = loadConfigOrExit("gateway");
const logger = createLoggerFromConfig(config, "gateway");
const store = openStore({
  dbPath: config.dbPath,
  synchronous: config.dbSynchronous,
  workerStaleMs: config.workerStaleMs,
  defaultMaxAttempts: config.maxAttempts,
  onTransition: logTransitions(logger),
});
if (store.migration.applied.length > 0) {
  logger.info("database migrated", { from: store.migration.from, to: store.migration.to, db: config.dbPath });
}
const databaseFile = exitWhenDatabaseFileLost(config, logger);

const proxy = createTargetProxy({
  targetUrl: config.ollamaUrl,
  token: config.ollamaToken,
  connectTimeoutMs: config.connectTimeoutMs,
  logger,
});
const waker = createWaker(config.dataDir);
const server = createGatewayServer(
  createRequestListener({ config, store, logger, proxy, wake: waker.wake, databaseFile }),
  config,
  logger,
);
server.on("error", (err) => {
  logger.error("cannot listen", { host: config.host, port: config.port, error: err.message });
  store.close();
  process.exit(1);
});
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo;
  logger.info("gateway listening", { url: `http://${address}:${port}`, config: redactConfig(config) });
});

handleShutdownSignals(logger, async () => {
  // Stop accepting, drop idle keep-alive sockets, and wait for in-flight requests to finish.
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  proxy.close();
  store.close();
});
