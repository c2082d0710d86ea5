import type { Command } from "commander";
import { type CommandKit, type JsonOption, printJson, withJson } from "../command-kit.js";
import { EXIT } from "../exit-codes.js";
import { connectForeman } from "../foreman.js";
import { formatBytes, formatDateTime, formatDuration, msSince } from "../format.js";
import { requestJson } from "../http.js";
import type { StatusResponse } from "../ops-types.js";
import { type Style, styleFor } from "../style.js";
import { formatTable } from "../table.js";

/** `foreman status`: the gateway's status route, readable at a glance. */
export function registerStatus(program: Command, kit: CommandKit): void {
  withJson(program.command("status"))
    .description("the target, resident models, the worker, the queue and the last hour, at a glance")
    .action(
      kit.act(async (options: JsonOption) => {
        const { io } = kit;
        const { endpoint } = connectForeman(io);
        const status = await requestJson<StatusResponse>(endpoint, { path: "/status" });
        if (options.json) printJson(io, status);
        else io.stdout.write(`${renderStatus(status, io.now(), styleFor(io.stdout, io.env))}\n`);
        // A script's health probe: foreman answered, but the target it fronts is down.
        return status.target?.reachable === false ? EXIT.unreachable : EXIT.ok;
      }),
    );
}

const LABEL_WIDTH = 10;
const INDENT = " ".repeat(LABEL_WIDTH);
/** /api/ps shows a pinned model (negative keep_alive) as expiring some 292 years ahead. */
const PINNED_AFTER_MS = 100 * 365 * 24 * 3600 * 1000;

export function renderStatus(status: StatusResponse, now: number, style: Style): string {
  const sections: Array<[string, string[]]> = [
    ["target", targetLines(status, now, style)],
    ["worker", workerLines(status, style)],
    ["models", modelLines(status, now, style)],
    ["queue", queueLines(status, now)],
    ["webhooks", [`${status.webhooks?.backlog ?? 0} waiting to be delivered`]],
    ["last hour", [lastHour(status)]],
  ];
  return sections
    .flatMap(([label, lines]) => lines.map((line, i) => (i === 0 ? label.padEnd(LABEL_WIDTH) : INDENT) + line))
    .map((line) => line.trimEnd())
    .join("\n");
}

function targetLines(status: StatusResponse, now: number, style: Style): string[] {
  const t = status.target;
  const since = t.since ? ` since ${formatDateTime(t.since)} (${formatDuration(msSince(t.since, now))})` : "";
  const version = t.version ? ` · Ollama ${t.version}` : "";
  if (t.reachable) return [`${style.green("up")}${since} · ${t.url}${version}`];
  const lines = [`${style.red("down")}${since} · ${t.url}`];
  const seen = t.last_seen_at ? `last seen ${formatDateTime(t.last_seen_at)}` : "never seen";
  lines.push(t.error ? `${seen} · ${t.error}` : seen);
  return lines;
}

function workerLines(status: StatusResponse, style: Style): string[] {
  const w = status.worker;
  const heartbeat =
    w.heartbeat_age_ms === null ? "no heartbeat" : `heartbeat ${formatDuration(w.heartbeat_age_ms)} ago`;
  const where = w.pid !== null ? ` · pid ${w.pid}${w.hostname ? ` on ${w.hostname}` : ""}` : "";
  const standby = w.standby ? "standby waiting" : "no standby";
  if (!w.active) return [`${style.red("no active worker")} · ${heartbeat} · ${standby}`];
  const job = w.current_job;
  return [
    `${style.green("active")}${where} · ${heartbeat} · ${standby}`,
    job ? `${job.state} ${job.id} (${job.model}) for ${formatDuration(job.for_ms)}` : "idle",
  ];
}

function modelLines(status: StatusResponse, now: number, style: Style): string[] {
  const { resident, embedder } = status.models;
  const lines: string[] = [];
  if (resident.length === 0) lines.push("none resident");
  else {
    const rows = resident.map((m) => [
      m.name,
      expiry(m.expires_at, now),
      formatBytes(m.size_vram),
      m.embedder ? "embedder" : "",
    ]);
    const table = formatTable(
      [{ header: "model" }, { header: "expires" }, { header: "vram", align: "right" }, { header: "" }],
      rows,
    );
    lines.push(...table.split("\n"));
  }
  if (embedder && !embedder.resident) lines.push(style.yellow(`the embedder ${embedder.name} is not resident`));
  if (!embedder) lines.push("no embedder configured (FOREMAN_EMBED_MODEL)");
  return lines;
}

function expiry(iso: string | null, now: number): string {
  if (!iso) return "-";
  const left = Date.parse(iso) - now;
  if (Number.isNaN(left)) return iso;
  if (left > PINNED_AFTER_MS) return "pinned";
  return left <= 0 ? "expiring" : `in ${formatDuration(left)}`;
}

function queueLines(status: StatusResponse, now: number): string[] {
  const q = status.queue;
  if (q.depth === 0) return ["empty"];
  const oldest = q.oldest_queued_age_ms === null ? "" : `, oldest waiting ${formatDuration(q.oldest_queued_age_ms)}`;
  const rows = q.by_model.map((m) => [m.model, m.queued, formatDuration(msSince(m.oldest_queued_at, now))]);
  const table = formatTable(
    [{ header: "model" }, { header: "queued", align: "right" }, { header: "oldest", align: "right" }],
    rows,
  );
  return [`${q.depth} queued${oldest}`, ...table.split("\n")];
}

const STATE_ORDER = ["done", "failed", "canceled", "queued", "loading", "working"] as const;

function lastHour(status: StatusResponse): string {
  const counts = status.jobs_last_hour ?? {};
  return STATE_ORDER.map((state) => `${counts[state] ?? 0} ${state}`).join(" · ");
}
