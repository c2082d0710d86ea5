import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  createLoggerFromConfig,
  createWaker,
  handleShutdownSignals,
  loadConfigOrExit,
  logTransitions,
  openConfiguredStore,
  redactConfig,
} from "@foreman/shared";
import { createRequestListener } from "./app.js";
import { createTargetProxy } from "./proxy/target-proxy.js";

const config = loadConfigOrExit("gateway");
const logger = createLoggerFromConfig(config, "gateway");
const store = openConfiguredStore(config, logger, logTransitions(logger));

const proxy = createTargetProxy({
  targetUrl: config.ollamaUrl,
  token: config.ollamaToken,
  connectTimeoutMs: config.connectTimeoutMs,
  logger,
});
const waker = createWaker(config.dataDir);
const server = http.createServer(createRequestListener({ config, store, logger, proxy, wake: waker.wake }));
server.on("error", (err) => {
  logger.error("cannot listen", { host: config.host, port: config.port, error: err.message });
  store.close();
  process.exit(1);
});
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo;
  logger.info("gateway listening", { url: `http://${address}:${port}`, config: redactConfig(config) });
});
// Streams stay open as long as a job runs; only idle sockets are timed out.
server.keepAliveTimeout = 65_000;

handleShutdownSignals(logger, async () => {
  // Stop accepting, drop idle keep-alive sockets, and wait for in-flight requests to finish.
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  proxy.close();
  store.close();
});
