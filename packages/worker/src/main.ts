import {
  createJobOutcomes,
  displayUrl,
  drainKeyOf,
  handleShutdownSignals,
  loadKeyText,
  logTransitions,
  startProcess,
  watchWakes,
  webhookSettings,
} from "@foreman/shared";
import { ulid } from "ulid";
import { createJobRescuer } from "./job-rescuer.js";
import { createJobRunner } from "./job-runner.js";
import { createLeadership } from "./leadership.js";
import { createModelResidency } from "./model-residency.js";
import { createQueueRunner } from "./queue-runner.js";
import { createRetentionPruner } from "./retention-pruner.js";
import { createTargetClient } from "./target-client.js";
import { createTargetPoller } from "./target-poller.js";
import { createTargetWaker, wakeActionsFromConfig } from "./target-waker.js";
import { createWebhookDispatcher, type WebhookDispatcher } from "./webhook-dispatcher.js";

let webhooks: WebhookDispatcher | null = null;
const { config, logger, store } = startProcess("worker", (logger) => {
  const logTransition = logTransitions(logger);
  return (job, from, reason) => {
    logTransition(job, from, reason);
    // The transition may have written an outbox row: deliver it now rather than at the next poll.
    if (job.webhook) webhooks?.kick();
  };
});
logger.info(`worker starting; target ${displayUrl(config.ollamaUrl)}, database ${config.dbPath}`, {
  pid: process.pid,
  target: displayUrl(config.ollamaUrl),
  db: config.dbPath,
  ...(config.embedModel ? { embed_model: config.embedModel } : {}),
});

const client = createTargetClient({
  baseUrl: config.ollamaUrl,
  token: config.ollamaToken,
  timeoutMs: Math.max(config.connectTimeoutMs, 1000),
  idleTimeoutMs: config.targetIdleTimeoutMs,
});
// One id for this worker in the lease and on every transition it records (ADR 0004).
const workerId = ulid();
const outcomes = createJobOutcomes({
  transitions: store.transitions.forWorker(workerId),
  artifacts: store.artifacts,
  dataDir: config.dataDir,
  logger,
  inlineResultMaxBytes: config.inlineResultMaxBytes,
});
// One of the target's model slots stays for the embedder (or, with none configured, for what the
// pass-through routes load); the worker rotates its models through the others (ADR 0027).
const workerSlots = config.targetModelSlots - 1;
const residency = createModelResidency({
  client,
  logger,
  embedModel: config.embedModel,
  workerSlots,
  onModelSwitch: (from, to) => {
    // A load key names the runner options too (a reload for other options is a load); the metric's label
    // stays the model alone, so its series stay as few as the models.
    // Counted and recorded before it is logged: a reader of the log line finds it in the store.
    store.metrics.increment("foreman_model_loads_total", { model: to.model });
    if (from !== null) store.metrics.increment("foreman_model_swaps_total");
    store.systemEvents.record("model.loaded", {
      model: to.model,
      previous: from?.model ?? null,
      ...(to.runnerOptions ? { runner_options: to.runnerOptions } : {}),
    });
    logger.info("model switch", { from: from && loadKeyText(from), to: loadKeyText(to) });
  },
  onModelUnloaded: (model, reason) => store.systemEvents.record("model.unloaded", { model, reason }),
});
/** The resident load keys as the drain groups jobs: without runner options when it groups by model alone. */
const residentDrainKeys = () => residency.residents().map((k) => drainKeyOf(k, config.drainByRunnerOptions));
const runner = createJobRunner({
  client,
  claim: (jobId) => store.claims.claimQueued(workerId, jobId),
  jobs: store.jobs,
  outcomes,
  residency,
  logger,
  dataDir: config.dataDir,
  lineLimit: config.targetLineLimit,
});

webhooks = createWebhookDispatcher({ store, logger, ...webhookSettings(config) });

const rescuer = createJobRescuer({
  store,
  outcomes,
  logger,
  dataDir: config.dataDir,
  currentJobId: () => runner.currentJobId(),
});

const pruner = createRetentionPruner({
  store,
  logger,
  dataDir: config.dataDir,
  retentionMs: config.retentionMs,
  syncRetentionMs: config.syncRetentionMs,
  intervalMs: config.retentionSweepMs,
});

let queue: ReturnType<typeof createQueueRunner> | null = null;
const poller = createTargetPoller({
  client,
  store,
  logger,
  intervalMs: config.pollMs,
  embedModel: config.embedModel,
  downProbeMaxMs: config.targetDownProbeMaxMs,
  queuedCount: () => store.jobs.queuedCount(),
  onUp: () => queue?.targetUp(),
  onResident: (names, askedAt) => residency.observeResident(names, askedAt),
  onDown: () => waker.kick(),
});
// Opt-in: with no wake URL or MAC configured it has no actions and never starts.
const waker = createTargetWaker({
  logger,
  actions: wakeActionsFromConfig(config),
  intervalMs: config.wakeIntervalMs,
  checkEveryMs: config.pollMs,
  targetReachable: () => poller.isReachable(),
  hasQueuedJobs: () => store.jobs.hasQueuedJobs(),
});

const leadership = createLeadership({
  workerId,
  store,
  logger,
  heartbeatMs: config.heartbeatMs,
  currentJobId: () => runner.currentJobId(),
  resident: residentDrainKeys,
  workerSlots,
  onActive: () => {
    rescuer.start();
    waker.start();
    poller.start();
    webhooks?.start();
    pruner.start();
    queue?.start();
  },
  onLost: () => {
    rescuer.stop();
    void waker.stop();
    void poller.stop();
    void webhooks?.stop();
    void pruner.stop();
    void queue?.stop(0);
  },
});
queue = createQueueRunner({
  store,
  runner,
  resident: residentDrainKeys,
  logger,
  workerId: leadership.identity.workerId,
  isActive: () => leadership.isActive(),
  pollMs: config.queuePollMs,
  starvationMs: config.starvationMs,
  targetUp: () => poller.isUp(),
  onUnreachable: () => poller.markDown("a job could not reach the target"),
});
// A gateway's wake-up may mean a new job, a cancel, or a new outbox row (a job created or canceled there).
const stopWatching = watchWakes(config.dataDir, () => {
  queue?.kick();
  if (leadership.isActive()) webhooks?.kick();
  waker.kick();
});
leadership.start();

handleShutdownSignals(
  logger,
  async () => {
    stopWatching();
    await queue?.stop(config.shutdownGraceMs);
    rescuer.stop();
    await Promise.all([poller.stop(), webhooks?.stop(), pruner.stop(), waker.stop()]);
    leadership.stop();
    client.close();
    store.close();
  },
  config.shutdownGraceMs + 5000,
);
