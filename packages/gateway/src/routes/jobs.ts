import fs from "node:fs";
import { pipeline } from "node:stream";
import {
  ConflictError,
  ensureRelay,
  type ForemanConfig,
  followRelay,
  isJobState,
  isSafeArtifactName,
  isTerminal,
  JOB_STATES,
  type JobRecord,
  type Logger,
  NotFoundError,
  normalizeModelName,
  relayPath,
  resolveArtifactFile,
  type Store,
  ValidationError,
} from "@foreman/shared";
import { type Response, Router } from "express";
import { cancelJob } from "../jobs/cancel.js";
import { fullView, jobViewWithPosition } from "../jobs/job-views.js";
import { queuePositions } from "../jobs/queue-position.js";
import { waitForJobEnd } from "../jobs/wait-for-end.js";

export interface JobsDeps {
  config: ForemanConfig;
  store: Store;
  logger: Logger;
  wake: () => void;
}

/**
 * The async jobs API but its entrance: POST /jobs is served on the raw request (jobs/fast-submit.ts), before
 * Express, by the production listener.
 */
export function jobsRoutes(deps: JobsDeps): Router {
  const { store, config } = deps;
  const router = Router();

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
    const positions = page.some((j) => j.state === "queued") ? queuePositions(store, config.starvationMs) : new Map();
    res.json({
      jobs: page.map((j) => view(j, positions.get(j.id))),
      next_cursor: jobs.length > limit ? encodeCursor(page.at(-1)!.id) : null,
    });
  });

  router.get("/jobs/:id", async (req, res) => {
    let job = mustGet(req.params.id);
    const waitText = stringParam(req.query.wait, "wait");
    if (waitText !== undefined && !isTerminal(job.state)) {
      const seconds = Number(waitText);
      if (!Number.isFinite(seconds) || seconds < 0) {
        throw new ValidationError(`wait must be a number of seconds from 0 to ${config.maxWaitSeconds}`);
      }
      const controller = new AbortController();
      res.on("close", () => controller.abort());
      const waitMs = Math.min(seconds, config.maxWaitSeconds) * 1000;
      job = (await waitForJobEnd(store, config.dataDir, job.id, waitMs, config.relayPollMs, controller.signal)) ?? job;
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
    const file = record ? resolveArtifactFile(config.dataDir, record) : null;
    if (!record || !file || !fs.existsSync(file)) throw new NotFoundError(`job ${job.id} has no artifact ${name}`);
    res.setHeader("content-type", record.contentType);
    res.setHeader("content-length", String(record.size));
    // pipeline, not pipe: a file pruned meanwhile or a caller gone mid-download must close the file, not
    // crash the gateway or leak the descriptor.
    pipeline(fs.createReadStream(file), res, (err) => {
      if (err && !res.headersSent) res.status(404).json({ error: `job ${job.id} has no artifact ${name}` });
    });
  });

  router.get("/jobs/:id/stream", async (req, res) => {
    const job = mustGet(req.params.id);
    ensureRelay(config.dataDir, job.id);
    res.writeHead(200, { "content-type": "application/x-ndjson", "X-Foreman-Job-Id": job.id });
    const controller = new AbortController();
    res.on("close", () => controller.abort());
    for await (const batch of followRelay(relayPath(config.dataDir, job.id), {
      pollMs: config.relayPollMs,
      signal: controller.signal,
      fromLastAttempt: true,
      isEnded: () => {
        const current = store.jobs.get(job.id);
        return current && isTerminal(current.state)
          ? {
              state: current.state as "done" | "failed" | "canceled",
              ...(current.error ? { error: current.error } : {}),
            }
          : null;
      },
    })) {
      let out = "";
      for (const item of batch) {
        if (item.kind === "data") out += `${item.line}\n`;
        else if (item.kind === "end" && item.end.state !== "done") {
          out += `${JSON.stringify({ error: item.end.error ?? `job ${item.end.state}` })}\n`;
        }
      }
      if (out) res.write(out);
    }
    res.end();
  });

  return router;
}

function stringParam(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ValidationError(`${name} must be given once, as a string`);
  return value;
}

const encodeCursor = (id: string) => Buffer.from(id).toString("base64url");

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString();
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) throw new ValidationError("cursor is not valid");
  return id;
}
