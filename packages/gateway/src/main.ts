import type { AddressInfo } from "node:net";
import { createWaker, displayUrl, handleShutdownSignals, logTransitions, startProcess } from "@foreman/shared";
import { createRequestListener } from "./app.js";
import { createTargetProxy } from "./proxy/target-proxy.js";
import { createResponseDrain } from "./response-drain.js";
import { createGatewayServer } from "./server.js";

const { config, logger, store, databaseFile } = startProcess("gateway", logTransitions);

const proxy = createTargetProxy({
  targetUrl: config.ollamaUrl,
  token: config.ollamaToken,
  connectTimeoutMs: config.connectTimeoutMs,
  logger,
});
const waker = createWaker(config.dataDir);
const drain = createResponseDrain();
const server = createGatewayServer(
  createRequestListener({ config, store, logger, proxy, wake: waker.wake, drain, databaseFile }),
  config,
  logger,
);
server.on("error", (err: NodeJS.ErrnoException) => {
  const where = `${config.host}:${config.port}`;
  const advice =
    err.code === "EADDRINUSE"
      ? `another process is listening there: stop it, or set FOREMAN_PORT to a free port`
      : err.code === "EADDRNOTAVAIL"
        ? `no interface of this host has that address: set FOREMAN_HOST (0.0.0.0 listens on all)`
        : err.code === "EACCES"
          ? `ports below 1024 need privileges: set FOREMAN_PORT to 1024 or above`
          : `check FOREMAN_HOST and FOREMAN_PORT`;
  logger.error(`cannot listen on ${where}: ${err.code ?? err.message}; ${advice}`, { code: err.code });
  store.close();
  // Exit code 2, like a configuration error: restarting cannot help until the operator changes something.
  setImmediate(() => process.exit(2));
});
server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
  logger.info(`gateway listening on ${url}; target ${displayUrl(config.ollamaUrl)}`, {
    url,
    target: displayUrl(config.ollamaUrl),
    data_dir: config.dataDir,
  });
});

handleShutdownSignals(
  logger,
  async () => {
    // Stop accepting and drop idle keep-alive sockets; open streams and long polls get the grace period,
    // then are ended (a sync stream with a final error line, its job canceled).
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const forced = await drain.drain(config.shutdownGraceMs);
    if (forced > 0) logger.warn("ended open responses after the grace period", { count: forced });
    // Connections whose last response just ended, and any untracked one still open (a pass-through pull),
    // must not hold the exit.
    server.closeIdleConnections();
    const late = setTimeout(() => server.closeAllConnections(), 1000);
    await closed;
    clearTimeout(late);
    proxy.close();
    store.close();
  },
  config.shutdownGraceMs + 5000,
);
