import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, type Proc, stopAll } from "./harness.js";

const EMBEDDER = "nomic-embed-text:latest";
const API_TOKEN = "operator-api-token-0123456789";
const OLLAMA_TOKEN = "target-bearer-token-abcdef";
const WEBHOOK_SECRET = `whsec_${Buffer.from("observability-secret-32-bytes-xx").toString("base64")}`;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small reader of the Prometheus text format: enough to find families, series and values. */
function parseScrape(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      types.set(name!, type!);
      continue;
    }
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

const sum = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);

describe("e2e: observability — metrics, status, events", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;
  let worker: Proc;
  const auth = { authorization: `Bearer ${API_TOKEN}` };
  const get = (path: string) => fetch(`${f.url}${path}`, { headers: auth });
  const post = (path: string, body: unknown) =>
    fetch(`${f.url}${path}`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  let failing: http.Server;
  let failingUrl: string;

  before(async () => {
    sim = await startSimulator({ loadMs: 30, tokensPerSecond: 400, token: OLLAMA_TOKEN });
    failing = http.createServer((req, res) => {
      req.resume();
      res.writeHead(500).end();
    });
    await new Promise<void>((r) => failing.listen(0, "127.0.0.1", r));
    failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/hook`;
    f = await foreman({
      ollamaUrl: sim.url,
      env: {
        FOREMAN_EMBED_MODEL: EMBEDDER,
        FOREMAN_API_TOKEN: API_TOKEN,
        FOREMAN_OLLAMA_TOKEN: OLLAMA_TOKEN,
        FOREMAN_WEBHOOK_SECRET: WEBHOOK_SECRET,
        FOREMAN_WEBHOOK_RETRY_BASE_MS: "50",
        FOREMAN_POLL_MS: "200",
        FOREMAN_TARGET_DOWN_PROBE_MAX_MS: "300",
      },
    });
    await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("embedder pinned");
  });
  after(async () => {
    await stopAll();
    await sim.close();
    await new Promise<void>((r) => failing.close(() => r()));
  });

  it("one scrape after a mixed run shows every family, with loads equal to the target's own count", async () => {
    const chat = (model: string) =>
      post("/api/chat", { model, messages: [{ role: "user", content: `hi ${model}` }], stream: false });
    for (const model of ["llama3.2", "llama3.2", "qwen3:8b", "llama3.2"])
      expect((await chat(model)).status).to.equal(200);
    expect((await chat("no-such-model")).status).to.equal(404);
    expect((await post("/api/embed", { model: EMBEDDER, input: "vector" })).status).to.equal(200);
    const hooked = await post("/jobs", { model: "llama3.2", prompt: "hook", webhook: { url: failingUrl } });
    const { id } = (await hooked.json()) as { id: string };
    await worker.waitForLine((l) => l.includes("webhook delivery failed") && l.includes(id));

    const res = await get("/metrics");
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.match(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseScrape(await res.text());

    const stats = sim.stats();
    expect(sum(samples, "foreman_model_loads_total")).to.equal(stats.loads.total);
    expect(sum(samples, "foreman_model_loads_total", { model: EMBEDDER })).to.equal(1);
    // llama → qwen → llama: two swaps.
    expect(sum(samples, "foreman_model_swaps_total")).to.equal(2);
    expect(types.get("foreman_model_loads_total")).to.equal("counter");
    expect(types.get("foreman_job_wait_seconds")).to.equal("histogram");
    expect(sum(samples, "foreman_job_wait_seconds_count", { model: "llama3.2:latest" })).to.be.at.least(4);
    expect(sum(samples, "foreman_job_run_seconds_count", { model: "qwen3:8b" })).to.equal(1);
    expect(sum(samples, "foreman_jobs_finished_total", { model: "no-such-model:latest", state: "failed" })).to.equal(1);
    expect(sum(samples, "foreman_jobs_finished_total", { model: "llama3.2:latest", state: "done" })).to.be.at.least(3);
    expect(sum(samples, "foreman_generated_tokens_total", { model: "llama3.2:latest" })).to.be.greaterThan(0);
    expect(sum(samples, "foreman_webhook_deliveries_total", { outcome: "failed_will_retry" })).to.be.at.least(1);
    expect(sum(samples, "foreman_webhook_backlog")).to.be.at.least(1);
    expect(
      sum(samples, "foreman_http_requests_total", { route: "/api/embed", method: "POST", status: "200" }),
    ).to.equal(1);
    expect(sum(samples, "foreman_http_requests_total", { route: "/api/chat", status: "404" })).to.equal(1);
    expect(sum(samples, "foreman_embed_proxy_seconds_count", { route: "/api/embed" })).to.equal(1);
    expect(sum(samples, "foreman_relay_lag_seconds_count")).to.be.greaterThan(0);
    expect(sum(samples, "foreman_target_up")).to.equal(1);
    expect(sum(samples, "foreman_worker_up")).to.equal(1);
    expect(samples.some((s) => s.name === "foreman_queue_depth" || types.has("foreman_queue_depth"))).to.equal(true);
    expect(samples.some((s) => s.name === "process_cpu_seconds_total")).to.equal(true);
    // Bounded labels: no job id and no raw path in any label value.
    for (const s of samples) {
      for (const v of Object.values(s.labels)) {
        expect(v).to.not.match(/[0-9A-HJKMNP-TV-Z]{26}/);
        expect(v).to.not.match(/^\/jobs\/[^:]/);
      }
    }
  });

  it("status reflects a running job, then a target outage", async () => {
    const created = await post("/jobs", { model: "llama3.2", prompt: "long", options: { num_predict: 4000 } });
    const { id } = (await created.json()) as { id: string };
    await get(`/jobs/${id}?wait=0`);
    // biome-ignore lint/suspicious/noExplicitAny: the status body is checked field by field below.
    type Json = any;
    let status: Json = {};
    for (let i = 0; i < 50; i++) {
      status = await (await get("/status")).json();
      // The job before it (the previous test's) may still be the one running: wait for this one.
      if (status.worker.current_job?.id === id && status.worker.current_job.state === "working") break;
      await get(`/jobs/${id}?wait=0.1`);
    }
    expect(status.worker).to.include({ active: true });
    expect(status.worker.current_job).to.include({ id, model: "llama3.2:latest", state: "working" });
    expect(status.target).to.include({ reachable: true });
    expect(status.target.url).to.equal(sim.url);
    expect(status.models.embedder).to.deep.equal({ name: EMBEDDER, resident: true });
    expect(status.jobs_last_hour.done).to.be.at.least(4);
    await post(`/jobs/${id}/cancel`, {});

    const mark = worker.lines.length;
    await sim.faults.refuseConnections(60_000);
    try {
      await worker.waitForLog("target down", 10_000, mark);
      const down: Json = await (await get("/status")).json();
      expect(down.target.reachable).to.equal(false);
      expect(down.target.since).to.be.a("string");
      expect(down.target.error).to.be.a("string");
    } finally {
      await sim.faults.clear();
    }
    await worker.waitForLog("target up", 10_000, mark);
  });

  it("the event stream delivers every transition of a job in order, and target events", async () => {
    const controller = new AbortController();
    const res = await fetch(`${f.url}/events`, { headers: auth, signal: controller.signal });
    expect(res.headers.get("content-type")).to.match(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const events: Array<{ event: string; data: Record<string, unknown> }> = [];
    const until = async (test: () => boolean) => {
      for (let i = 0; i < 200 && !test(); i++) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          end = buffer.indexOf("\n\n");
        }
      }
    };
    const created = await post("/jobs", { model: "llama3.2", prompt: "events" });
    const { id } = (await created.json()) as { id: string };
    await until(() => events.some((e) => e.event === "job.done" && e.data.id === id));
    expect(events.filter((e) => e.data.id === id).map((e) => e.event)).to.deep.equal([
      "job.queued",
      "job.loading",
      "job.working",
      "job.done",
    ]);
    await sim.faults.refuseConnections(60_000);
    await until(() => events.some((e) => e.event === "target.down"));
    await sim.faults.clear();
    await until(() => events.some((e) => e.event === "target.up"));
    controller.abort();
  });

  it("no secret appears in any log line at debug level", () => {
    const all = [...f.gateway!.lines, ...worker.lines].join("\n");
    expect(all).to.not.include(API_TOKEN);
    expect(all).to.not.include(OLLAMA_TOKEN);
    expect(all).to.not.include(WEBHOOK_SECRET);
    expect(all).to.not.include(WEBHOOK_SECRET.slice(6));
  });
});
