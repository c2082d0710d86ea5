#!/usr/bin/env node
// A batch through foreman: every line of a file becomes a chat job, at most --concurrency of them in flight,
// and each job's end arrives as a signed webhook that the Express middleware verifies. Results are written
// as JSON lines (--out) and a summary is printed at the end.
//
//   FOREMAN_URL=http://127.0.0.1:11435 node examples/batch.mjs prompts.txt --model llama3.2 --concurrency 4
//
// Environment: FOREMAN_URL (default http://127.0.0.1:11435), FOREMAN_API_TOKEN (when the gateway has one).
// The receiver listens on --listen (default 127.0.0.1, a free port); foreman must be able to reach it at
// --webhook-url (default http://<listen>:<port>/hooks). A receiver on loopback or a private address is
// refused by foreman unless the operator allows it: FOREMAN_WEBHOOK_ALLOWED_HOSTS=127.0.0.1 on the worker
// and the gateway.
//
// Running it again on the same file picks the same jobs up instead of queueing them twice: each job's
// Idempotency-Key is made from the model, the file's content and the line. The job's body must match too,
// so a rerun needs the same receiver: the same --port (or --webhook-url) and BATCH_WEBHOOK_SECRET (a
// whsec_… secret; a random one per run when unset).

import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ForemanClient, ForemanHttpError, webhookMiddleware } from "@foreman/client";
import express from "express";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "llama3.2" },
    concurrency: { type: "string", default: "4" },
    out: { type: "string" },
    listen: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "webhook-url": { type: "string" },
    "timeout-seconds": { type: "string", default: "600" },
  },
});
const [file] = positionals;
const concurrency = Number(args.concurrency);
if (!file || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error(
    "usage: node examples/batch.mjs <prompts file, one per line> [--model m] [--concurrency n] [--out file]",
  );
  process.exit(2);
}

const text = readFileSync(file, "utf8");
const prompts = text
  .split("\n")
  .map((line, index) => ({ line: index + 1, prompt: line.trim() }))
  .filter(({ prompt }) => prompt !== "" && !prompt.startsWith("#"));
const batchKey = await sha256(`${args.model}\n${text}`);

const foreman = new ForemanClient({
  baseUrl: process.env.FOREMAN_URL || "http://127.0.0.1:11435",
  token: process.env.FOREMAN_API_TOKEN || undefined,
});

// The receiver: one secret for this run, sent with each job; only verified deliveries count. Deliveries
// are at least once, so a redelivered event (the same webhook-id) is answered and otherwise ignored.
const secret = process.env.BATCH_WEBHOOK_SECRET || `whsec_${randomBytes(32).toString("base64")}`;
const TERMINAL = ["done", "failed", "canceled"];
const waiting = new Map(); // prompt line (the job's metadata) -> resolve(event)
const seen = new Set();
const app = express();
app.post("/hooks", express.raw({ type: "application/json" }), webhookMiddleware(secret), (req, res) => {
  const { webhookEvent: event, webhookId } = req;
  if (!seen.has(webhookId)) {
    seen.add(webhookId);
    if (TERMINAL.includes(event.data.state)) waiting.get(event.data.metadata?.line)?.(event);
  }
  res.status(204).end();
});
const server = await new Promise((resolve) => {
  const listening = app.listen(Number(args.port), args.listen, () => resolve(listening));
});
const webhookUrl = args["webhook-url"] ?? `http://${args.listen}:${server.address().port}/hooks`;

const startedAt = Date.now();
const results = [];
let next = 0;
let inFlight = 0;
let maxInFlight = 0;

/** Submits one prompt, waits for its terminal webhook (a long poll after --timeout-seconds), fetches its answer. */
async function run({ line, prompt }) {
  // Waiting starts before the submit: the job may end (and its webhook arrive) before the submit's answer.
  const endEvent = new Promise((resolve) => waiting.set(line, resolve));
  const job = await foreman.submit(
    {
      model: args.model,
      messages: [{ role: "user", content: prompt }],
      metadata: { line },
      webhook: { url: webhookUrl, secret, events: ["job.done", "job.failed", "job.canceled"] },
    },
    { idempotencyKey: `batch-${batchKey.slice(0, 32)}-${line}` },
  );
  let final = job;
  let via = "webhook";
  if (TERMINAL.includes(job.state)) {
    // A rerun of the same file: the job ended in an earlier run, whose receiver got its webhook.
    via = "earlier run";
  } else {
    let timer;
    const fallback = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), Number(args["timeout-seconds"]) * 1000);
    });
    const event = await Promise.race([endEvent, fallback]);
    clearTimeout(timer);
    if (event) final = event.data;
    else {
      via = "long poll";
      final = await foreman.wait(job.id);
    }
  }
  waiting.delete(line);
  const answer = final.state === "done" ? await foreman.result(final) : null;
  return {
    line,
    prompt,
    job_id: final.id,
    state: final.state,
    via,
    text: answer?.message?.content ?? null,
    error: final.error,
    eval_count: final.metrics?.eval_count ?? null,
  };
}

async function worker() {
  while (next < prompts.length) {
    const item = prompts[next++];
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const result = await run(item);
      results.push(result);
      const excerpt = (result.text ?? result.error ?? "").replace(/\s+/g, " ").slice(0, 60);
      console.log(
        `[${results.length}/${prompts.length}] line ${result.line} ${result.state} ${result.job_id} ${excerpt}`,
      );
    } catch (error) {
      results.push({ line: item.line, prompt: item.prompt, job_id: null, state: "error", error: String(error) });
      const hint =
        error instanceof ForemanHttpError && error.status === 409
          ? " (an earlier run used another receiver: pass its --port and BATCH_WEBHOOK_SECRET)"
          : "";
      console.log(
        `[${results.length}/${prompts.length}] line ${item.line} could not be submitted: ${error.message}${hint}`,
      );
    } finally {
      inFlight--;
    }
  }
}

try {
  await Promise.all(Array.from({ length: Math.min(concurrency, prompts.length) }, worker));
} finally {
  server.close();
}

results.sort((a, b) => a.line - b.line);
if (args.out) writeFileSync(args.out, results.map((r) => JSON.stringify(r)).join("\n") + (results.length ? "\n" : ""));
const count = (state) => results.filter((r) => r.state === state).length;
const tokens = results.reduce((sum, r) => sum + (r.eval_count ?? 0), 0);
const seconds = (Date.now() - startedAt) / 1000;
console.log(
  `summary: ${results.length} prompts, ${count("done")} done, ${count("failed")} failed, ${count("canceled")} canceled, ` +
    `${count("error")} not submitted; ${tokens} tokens in ${seconds.toFixed(1)} s; at most ${maxInFlight} in flight; ` +
    `${results.filter((r) => r.via === "webhook").length} ended by webhook`,
);
process.exitCode = count("done") === results.length ? 0 : 1;

async function sha256(value) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return Buffer.from(digest).toString("hex");
}
