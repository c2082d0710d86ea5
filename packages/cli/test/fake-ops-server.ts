import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { StatusResponse } from "../src/ops-types.js";

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface FakeOpsServer {
  url: string;
  /** Every request, in order of arrival. */
  seen: SeenRequest[];
  /** The status GET /status answers. */
  status: StatusResponse;
  /** The open /events connections, newest last: write SSE text to them, end them to make the CLI reconnect. */
  streams: http.ServerResponse[];
  /** Resolves when the n-th /events connection (1-based) is open. */
  eventStream(n: number): Promise<http.ServerResponse>;
  close(): Promise<void>;
}

/**
 * A loopback stand-in for the gateway's operations routes, answering the agreed shapes: `GET /status`
 * and `GET /events` (server-sent events, held open until the test ends them), with the bearer token
 * checked as the gateway checks it.
 */
export async function startFakeOpsServer(options: { token?: string; status?: StatusResponse } = {}) {
  const waiters: Array<{ n: number; resolve: (res: http.ServerResponse) => void }> = [];
  const fake = {
    url: "",
    seen: [] as SeenRequest[],
    status: options.status ?? sampleStatus(Date.now()),
    streams: [] as http.ServerResponse[],
  };
  const server = http.createServer((req, res) => {
    fake.seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "unauthorized" }));
      return;
    }
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "GET" && path === "/status") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(fake.status));
      return;
    }
    if (req.method === "GET" && path === "/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(": connected\n\n");
      fake.streams.push(res);
      for (const w of waiters.filter((w) => w.n <= fake.streams.length)) w.resolve(fake.streams[w.n - 1]!);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(fake, {
    eventStream(n: number): Promise<http.ServerResponse> {
      const open = fake.streams[n - 1];
      if (open) return Promise.resolve(open);
      return new Promise<http.ServerResponse>((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      for (const res of fake.streams) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }) satisfies FakeOpsServer;
}

/** Formats one server-sent event. */
export function sse(event: { id?: string | number; event?: string; data: unknown; retry?: number }): string {
  const lines: string[] = [];
  if (event.retry !== undefined) lines.push(`retry: ${event.retry}`);
  if (event.id !== undefined) lines.push(`id: ${event.id}`);
  if (event.event) lines.push(`event: ${event.event}`);
  lines.push(`data: ${typeof event.data === "string" ? event.data : JSON.stringify(event.data)}`);
  return `${lines.join("\n")}\n\n`;
}

/** A job view as GET /jobs/<id> shows it. */
export function jobView(fields: Partial<Record<string, unknown>> & { id: string; state: string }) {
  const at = "2026-11-28T04:00:00.000Z";
  return {
    kind: "chat",
    api: "ollama",
    mode: "async",
    model: "llama3.2:latest",
    created_at: at,
    queued_at: at,
    loading_at: null,
    working_at: null,
    ended_at: null,
    attempts: 0,
    max_attempts: 3,
    error: null,
    metadata: null,
    metrics: null,
    result: null,
    artifacts: [],
    webhook: null,
    ...fields,
  };
}

/** A plausible status: the target up, the embedder pinned and a worker model loaded, one job working. */
export function sampleStatus(now: number): StatusResponse {
  const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
  return {
    target: {
      url: "http://ollama.internal:11434",
      reachable: true,
      version: "0.32.14",
      since: iso(3 * 3600_000 + 12 * 60_000),
      last_seen_at: iso(1000),
      last_checked_at: iso(1000),
      error: null,
    },
    models: {
      resident: [
        { name: "nomic-embed-text:latest", expires_at: "2318-03-01T00:00:00Z", size_vram: 274_302_450, embedder: true },
        {
          name: "llama3.2:latest",
          expires_at: new Date(now + 290_000).toISOString(),
          size_vram: 2_019_393_189,
          embedder: false,
        },
      ],
      embedder: { name: "nomic-embed-text:latest", resident: true },
    },
    worker: {
      active: true,
      standby: false,
      pid: 4242,
      hostname: "worker-1",
      heartbeat_age_ms: 250,
      current_job: {
        id: "01JCURRENTJOB0000000000000",
        model: "llama3.2:latest",
        state: "working",
        since: iso(1200),
        for_ms: 1200,
      },
    },
    queue: {
      depth: 3,
      oldest_queued_age_ms: 5000,
      by_model: [
        { model: "llama3.2:latest", queued: 2, oldest_queued_at: iso(5000) },
        { model: "qwen3:8b", queued: 1, oldest_queued_at: iso(2000) },
      ],
    },
    webhooks: { backlog: 4 },
    jobs_last_hour: { queued: 3, loading: 0, working: 1, done: 10, failed: 2, canceled: 1 },
  };
}
