import {
  createLoggerFromConfig,
  handleShutdownSignals,
  loadConfigOrExit,
  logTransitions,
  openConfiguredStore,
  redactConfig,
  watchWakes,
} from "@foreman/shared";
import { ulid } from "ulid";
import { createJobRunner } from "./job-runner.js";
import { createLeadership } from "./leadership.js";
import { createQueueRunner } from "./queue-runner.js";
import { recoverInterruptedJobs } from "./recovery.js";
import { createRetentionPruner } from "./retention-pruner.js";
import { createTargetClient } from "./target-client.js";
import { createTargetPoller } from "./target-poller.js";
import { createWebhookDispatcher, type WebhookDispatcher } from "./webhook-dispatcher.js";

const config = loadConfigOrExit("worker");
const logger = createLoggerFromConfig(config, "worker");
const logTransition = logTransitions(logger);
let webhooks: WebhookDispatcher | null = null;
const store = openConfiguredStore(config, logger, (job, from, reason) => {
  logTransition(job, from, reason);
  // The transition may have written an outbox row: deliver it now rather than at the next poll.
  if (job.webhook) webhooks?.kick();
});
logger.info("worker starting", { pid: process.pid, config: redactConfig(config) });

const client = createTargetClient({
  baseUrl: config.ollamaUrl,
  token: config.ollamaToken,
  timeoutMs: Math.max(config.connectTimeoutMs, 1000),
  idleTimeoutMs: config.targetIdleTimeoutMs,
});
// One id for this worker in the lease and on every transition it records (ADR 0004).
const workerId = ulid();
const runner = createJobRunner({
  store,
  client,
  logger,
  config,
  workerId,
  onModelSwitch: (from, to) => logger.info("model switch", { from, to }),
});

webhooks = createWebhookDispatcher({
  store,
  logger,
  ...(config.webhookSecret ? { defaultSecret: config.webhookSecret } : {}),
  timeoutMs: config.webhookTimeoutMs,
  retryBaseMs: config.webhookRetryBaseMs,
  retryMaxDelayMs: config.webhookRetryMaxDelayMs,
  retryForMs: config.webhookRetryForMs,
  concurrency: config.webhookConcurrency,
});

const pruner = createRetentionPruner({
  store,
  logger,
  dataDir: config.dataDir,
  retentionMs: config.retentionMs,
  intervalMs: config.retentionSweepMs,
});

let queue: ReturnType<typeof createQueueRunner> | null = null;
const poller = createTargetPoller({
  client,
  store,
  logger,
  intervalMs: config.pollMs,
  embedModel: config.embedModel,
  onUp: () => queue?.targetUp(),
});

const leadership = createLeadership({
  workerId,
  store,
  logger,
  heartbeatMs: config.heartbeatMs,
  currentJobId: () => runner.currentJobId(),
  residentModel: () => runner.residentModel(),
  onActive: () => {
    recoverInterruptedJobs({ store, logger, dataDir: config.dataDir });
    poller.start();
    webhooks?.start();
    pruner.start();
    queue?.start();
  },
  onLost: () => {
    void poller.stop();
    void webhooks?.stop();
    void pruner.stop();
    void queue?.stop(0);
  },
});
queue = createQueueRunner({
  store,
  runner,
  logger,
  workerId: leadership.identity.workerId,
  isActive: () => leadership.isActive(),
  pollMs: config.queuePollMs,
  starvationMs: config.starvationMs,
});
// A gateway's wake-up may mean a new job, a cancel, or a new outbox row (a job created or canceled there).
const stopWatching = watchWakes(config.dataDir, () => {
  queue?.kick();
  if (leadership.isActive()) webhooks?.kick();
});
leadership.start();

handleShutdownSignals(
  logger,
  async () => {
    stopWatching();
    await queue?.stop(config.shutdownGraceMs);
    await Promise.all([poller.stop(), webhooks?.stop(), pruner.stop()]);
    leadership.stop();
    client.close();
    store.close();
  },
  config.shutdownGraceMs + 5000,
);
