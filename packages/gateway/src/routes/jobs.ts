import { pipeline } from "node:stream";
import {
  ConflictError,
  ensureRelay,
  followJobRelay,
  frameRelayData,
  frameRelayEnd,
  isJobState,
  isSafeArtifactName,
  isTerminal,
  JOB_STATES,
  type JobRecord,
  NotFoundError,
  normalizeModelName,
  openArtifact,
  type Store,
  ValidationError,
} from "@foreman/shared";
import { type Response, Router } from "express";
import { cancelJob } from "../jobs/cancel.js";
import { createdView, fullView, jobViewWithPosition } from "../jobs/job-views.js";
import { queuePositions } from "../jobs/queue-position.js";
import { attemptLinePicker, parseStreamResume, streamedAttempt } from "../jobs/stream-resume.js";
import { submitJob } from "../jobs/submit-job.js";
import { waitForJobEnd } from "../jobs/wait-for-end.js";
import { jsonBody, jsonBodyBytes } from "../json-body.js";
import { concurrencyLimit } from "../middleware/concurrency-limit.js";
import type { JobRouteDeps } from "../route-deps.js";

export type JobsDeps = JobRouteDeps;

/**
 * The async jobs API but its entrance: POST /jobs is served on the raw request (jobs/fast-submit.ts), before
 * Express, by the production listener.
 */
export function jobsRoutes(deps: JobsDeps): Router {
  const { store, config } = deps;
  const router = Router();
  const json = jsonBody(config.bodyLimit);
  // Requests that stay open are bounded per gateway, so many waiting callers cannot take every descriptor
  // and core; a refused one is told to come back shortly (a slot frees as soon as any job ends).
  const longPolls = concurrencyLimit({
    max: config.maxLongPolls,
    what: "long polls",
    key: "FOREMAN_MAX_LONG_POLLS",
    retryAfterSeconds: 5,
    applies: (req) => req.query.wait !== undefined,
  });
  const streamFollowers = concurrencyLimit({
    max: config.maxStreamFollowers,
    what: "stream followers",
    key: "FOREMAN_MAX_STREAM_FOLLOWERS",
    retryAfterSeconds: 5,
  });

  const view = (job: JobRecord, position?: number) => fullView(store, job, position);
  const viewOne = (job: JobRecord) => jobViewWithPosition(store, config.starvationMs, job);
  const mustGet = (id: string): JobRecord => {
    const job = store.jobs.get(id);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    return job;
  };
  const sendJob = (res: Response, status: number, job: JobRecord) => {
    res.setHeader("X-Foreman-Job-Id", job.id);
    res.status(status).json(viewOne(job));
  };

  router.post("/jobs", json, async (req, res) => {
    const { status, job, position } = await submitJob(deps, req.body, req.get("Idempotency-Key"), jsonBodyBytes(req));
    res.location(`/jobs/${job.id}`);
    if (status === 200) return sendJob(res, 200, job);
    res.setHeader("X-Foreman-Job-Id", job.id);
    if (position !== undefined) res.setHeader("X-Foreman-Queue-Position", String(position));
    res.status(202).json(createdView(store, job, position));
  });

  router.get("/jobs", (req, res) => {
    const state = stringParam(req.query.state, "state");
    if (state !== undefined && !isJobState(state)) {
      throw new ValidationError(`state must be one of ${JOB_STATES.join(", ")}`);
    }
    const modelParam = stringParam(req.query.model, "model");
    const model = modelParam === undefined ? undefined : normalizeModelName(modelParam);
    const limitText = stringParam(req.query.limit, "limit");
    const limit = limitText === undefined ? 20 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw new ValidationError("limit must be an integer from 1 to 100");
    const cursor = stringParam(req.query.cursor, "cursor");
    const before = cursor === undefined ? undefined : decodeCursor(cursor);
    const jobs = store.jobs.list({ state, model, before, limit: limit + 1 });
    const page = jobs.slice(0, limit);
    const positions = queuePositions(store, config.starvationMs, page);
    res.json({
      jobs: page.map((j) => view(j, positions.get(j.id))),
      next_cursor: jobs.length > limit ? encodeCursor(page.at(-1)!.id) : null,
    });
  });

  router.get("/jobs/:id", longPolls.middleware);
  router.get("/jobs/:id", async (req, res) => {
    let job = mustGet(req.params.id);
    const historyText = stringParam(req.query.history, "history");
    if (historyText !== undefined && historyText !== "0" && historyText !== "1" && historyText !== "true") {
      throw new ValidationError("history must be 1 (include the job's transitions) or 0");
    }
    const waitText = stringParam(req.query.wait, "wait");
    // Checked whether or not the job has ended: a bad value is the caller's error either way.
    if (waitText !== undefined && !/^\d{1,6}(\.\d{1,3})?$/.test(waitText)) {
      throw new ValidationError(`wait must be a number of seconds from 0 to ${config.maxWaitSeconds}`);
    }
    if (waitText !== undefined && !isTerminal(job.state)) {
      const seconds = Number(waitText);
      const controller = new AbortController();
      res.on("close", () => controller.abort());
      // A shutdown answers the long poll with the job as it stands.
      const untrack = deps.drain?.track(() => controller.abort());
      const waitMs = Math.min(seconds, config.maxWaitSeconds) * 1000;
      job = (await waitForJobEnd(store, config.dataDir, job.id, waitMs, config.relayPollMs, controller.signal)) ?? job;
      untrack?.();
    }
    if (historyText === "1" || historyText === "true") {
      res.setHeader("X-Foreman-Job-Id", job.id);
      res.json({ ...viewOne(job), history: historyView(store.transitions.history(job.id)) });
      return;
    }
    sendJob(res, 200, job);
  });

  router.post("/jobs/:id/cancel", (req, res) => {
    const outcome = cancelJob({ ...deps, dataDir: config.dataDir }, req.params.id);
    if (outcome.outcome === "missing") throw new NotFoundError(`job ${req.params.id} not found`);
    if (outcome.outcome === "ended") {
      res.setHeader("X-Foreman-Job-Id", outcome.job.id);
      throw new ConflictError(`job ${outcome.job.id} has already ended (${outcome.job.state})`);
    }
    sendJob(res, 200, outcome.job);
  });

  router.get("/jobs/:id/artifacts/:name", (req, res) => {
    const job = mustGet(req.params.id);
    res.setHeader("X-Foreman-Job-Id", job.id);
    const name = req.params.name;
    if (!isSafeArtifactName(name)) throw new ValidationError(`artifact name ${JSON.stringify(name)} is not allowed`);
    const record = store.artifacts.get(job.id, name);
    const bytes = record ? openArtifact(config.dataDir, record) : null;
    if (!record || !bytes) throw new NotFoundError(`job ${job.id} has no artifact ${name}`);
    res.setHeader("content-type", record.contentType);
    res.setHeader("content-length", String(record.size));
    // pipeline, not pipe: a file pruned meanwhile or a caller gone mid-download must close the file, not
    // crash the gateway or leak the descriptor.
    pipeline(bytes, res, (err) => {
      if (err && !res.headersSent) res.status(404).json({ error: `job ${job.id} has no artifact ${name}` });
    });
  });

  router.get("/jobs/:id/stream", streamFollowers.middleware);
  router.get("/jobs/:id/stream", async (req, res) => {
    const job = mustGet(req.params.id);
    const resume = parseStreamResume(req.query);
    ensureRelay(config.dataDir, job.id);
    const attempt = resume ? streamedAttempt(store, job.id) : undefined;
    if (attempt !== undefined) res.setHeader("X-Foreman-Attempt", String(attempt));
    if (resume?.attempt !== undefined && resume.attempt !== attempt) {
      res.setHeader("X-Foreman-Job-Id", job.id);
      throw new ConflictError(
        `job ${job.id} is on attempt ${attempt}, not ${resume.attempt}: an attempt that was cut short cannot be continued; read the new one from its start (after=0)`,
      );
    }
    const pick = resume && attempt !== undefined ? attemptLinePicker(attempt, resume.after) : null;
    res.writeHead(200, { "content-type": "application/x-ndjson", "X-Foreman-Job-Id": job.id });
    // Sent now, not with the first chunk: a queued job may have none for a long time, and a caller's
    // time limit on the response headers (or its wish to learn the attempt) should not wait for it.
    res.flushHeaders();
    const controller = new AbortController();
    res.on("close", () => controller.abort());
    // A shutdown ends the follow; the caller can reattach to another gateway.
    const untrack = deps.drain?.track(() => controller.abort());
    for await (const batch of followJobRelay(config.dataDir, job.id, {
      pollMs: config.relayPollMs,
      signal: controller.signal,
      fromLastAttempt: pick === null,
      jobs: store.jobs,
    })) {
      let out = "";
      let stop = false;
      for (const item of batch) {
        const verdict = pick ? pick(item) : "send";
        if (verdict === "stop") {
          stop = true;
          break;
        }
        if (verdict === "skip") continue;
        if (item.kind === "data") out += frameRelayData("ndjson", item.line);
        else if (item.kind === "end") out += frameRelayEnd("ndjson", item.end);
      }
      if (out) res.write(out);
      if (stop) break;
    }
    untrack?.();
    res.end();
  });

  return router;
}

function stringParam(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ValidationError(`${name} must be given once, as a string`);
  return value;
}

/** A job's recorded transitions, oldest first, as the API shows them. */
function historyView(rows: ReturnType<Store["transitions"]["history"]>) {
  return rows.map((h) => ({
    from: h.from_state,
    to: h.to_state,
    at: new Date(h.at).toISOString(),
    attempt: h.attempt,
    reason: h.reason,
  }));
}

const encodeCursor = (id: string) => Buffer.from(id).toString("base64url");

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString();
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) throw new ValidationError("cursor is not valid");
  return id;
}
