import type { Job, JobResult } from "@foreman/client";
import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { EXIT } from "../exit-codes.js";
import { connectForeman } from "../foreman.js";
import {
  formatAgo,
  formatBytes,
  formatDateTime,
  formatDuration,
  msBetween,
  oneLine,
  tokensPerSecond,
} from "../format.js";
import { requestJson } from "../http.js";
import type { JobWithHistory } from "../ops-types.js";
import { type Cell, formatFields, formatTable } from "../table.js";

/** `foreman job <id>`: one job with its history and webhook deliveries. */
export function registerJob(program: Command, kit: CommandKit): void {
  withJson(program.command("job"))
    .description("one job: its timestamps, metrics, result, artifacts, history and webhook deliveries")
    .argument("<id>", "the job id")
    .action(
      kit.act(async (id: string, options: JsonOption) => {
        const { io } = kit;
        const { endpoint } = connectForeman(io);
        const job = await requestJson<JobWithHistory>(endpoint, {
          path: `/jobs/${encodeURIComponent(id)}`,
          query: { history: 1 },
        });
        if (options.json) printJson(io, job);
        else io.stdout.write(`${renderJob(job, io.now())}\n`);
        return EXIT.ok;
      }),
    );
}

export function renderJob(job: JobWithHistory, now: number): string {
  const fields: Array<[string, Cell]> = [
    ["id", job.id],
    ["model", job.model],
    ["kind", [job.kind, job.api, job.mode].filter(Boolean).join(", ")],
    ["state", job.cancel_requested ? `${job.state} (cancel requested)` : job.state],
  ];
  if (job.error) fields.push(["error", job.error]);
  if (job.state === "queued" && job.position !== undefined) fields.push(["position", job.position]);
  fields.push(
    ["attempts", `${job.attempts} of ${job.max_attempts}`],
    ["created", `${formatDateTime(job.created_at)} (${formatAgo(job.created_at, now)})`],
    ["loading", stamp(job.loading_at, "waited", msBetween(job.created_at, job.loading_at))],
    ["working", stamp(job.working_at, "load", msBetween(job.loading_at, job.working_at))],
    ["ended", stamp(job.ended_at, "ran", msBetween(job.loading_at ?? job.created_at, job.ended_at))],
  );
  if (job.metadata) fields.push(["metadata", JSON.stringify(job.metadata)]);
  const metrics = describeMetrics(job);
  if (metrics) fields.push(["metrics", metrics]);
  const result = resultText(job.result);
  if (result !== null) fields.push(["result", oneLine(JSON.stringify(result), 200)]);
  else if (job.result_url) fields.push(["result", job.result_url]);
  const blocks = [formatFields(fields)];

  if (job.artifacts.length > 0) {
    blocks.push(
      `artifacts\n${formatTable(
        [{ header: "name" }, { header: "type" }, { header: "size", align: "right" }, { header: "url" }],
        job.artifacts.map((a) => [a.name, a.content_type, formatBytes(a.size), a.url]),
        { indent: "  " },
      )}`,
    );
  }
  if (job.history === undefined) blocks.push("history   not reported by this gateway");
  else {
    blocks.push(
      `history\n${formatTable(
        [
          { header: "at" },
          { header: "from" },
          { header: "to" },
          { header: "attempt", align: "right" },
          { header: "reason", maxWidth: 60 },
        ],
        job.history.map((h) => [formatDateTime(h.at), h.from, h.to, h.attempt, h.reason]),
        { indent: "  " },
      )}`,
    );
  }
  if (job.webhook) {
    const events = job.webhook.events ? job.webhook.events.join(", ") : "all events";
    const deliveries = job.webhook.deliveries ?? [];
    const table =
      deliveries.length === 0
        ? "  no deliveries yet"
        : formatTable(
            [
              { header: "event" },
              { header: "status" },
              { header: "attempts", align: "right" },
              { header: "answer" },
              { header: "when" },
              { header: "last error", maxWidth: 50 },
            ],
            deliveries.map((d) => [
              d.type,
              d.status,
              d.attempts,
              d.last_status,
              d.delivered_at
                ? `delivered ${formatDateTime(d.delivered_at)}`
                : d.next_attempt_at
                  ? `next ${formatDateTime(d.next_attempt_at)}`
                  : "",
              d.last_error,
            ]),
            { indent: "  " },
          );
    blocks.push(`webhook   ${job.webhook.url} (${events})\n${table}`);
  }
  return blocks.join("\n");
}

function stamp(iso: string | null, what: string, ms: number | null): string {
  if (!iso) return "-";
  return ms === null ? formatDateTime(iso) : `${formatDateTime(iso)} (${what} ${formatDuration(ms)})`;
}

function describeMetrics(job: Job): string | null {
  const m = job.metrics;
  if (!m) return null;
  const parts: string[] = [];
  if (m.eval_count !== undefined) {
    const rate = tokensPerSecond(m);
    parts.push(`${m.eval_count} tokens${rate === null ? "" : ` at ${rate.toFixed(1)} tok/s`}`);
  }
  if (m.prompt_eval_count !== undefined) parts.push(`prompt ${m.prompt_eval_count} tokens`);
  if (m.load_duration !== undefined) parts.push(`load ${formatDuration(m.load_duration / 1e6)}`);
  if (m.total_duration !== undefined) parts.push(`total ${formatDuration(m.total_duration / 1e6)}`);
  return parts.length > 0 ? parts.join(" · ") : null;
}

/** The answer's text: a chat's message content or a generate's response. */
export function resultText(result: JobResult | null | undefined): string | null {
  if (!result) return null;
  if ("message" in result && result.message) return result.message.content ?? "";
  if ("response" in result && typeof result.response === "string") return result.response;
  return null;
}
