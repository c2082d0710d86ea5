import http from "node:http";
import {
  findNginx,
  percentile,
  type SummaryRow,
  startForeman,
  startNginx,
  startSim,
  startTwoHops,
  table,
} from "./lib.js";

type Route = [name: string, url: string | null];

/** Wall-clock now in ms with sub-millisecond precision, comparable with the simulator's created_at. */
const nowMs = () => performance.timeOrigin + performance.now();

/** RFC 3339 with nanoseconds → epoch ms with the fraction kept (Date.parse drops it below 1 ms). */
function parseCreatedAt(text: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) return Number.NaN;
  return Date.parse(`${m[1]}${m[3]}`) + (m[2] ? Number(m[2]) * 1000 : 0);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

/** Streams one chat; calls `onLine` with each NDJSON line and its arrival time; resolves with the first-byte time. */
function streamChat(
  url: string,
  body: object,
  onLine?: (line: string, at: number) => void,
): Promise<{ ttft: number; lines: number }> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${url}/api/chat`);
    const payload = JSON.stringify(body);
    const t0 = nowMs();
    let ttft = Number.NaN;
    let lines = 0;
    const req = http.request(
      {
        hostname: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        agent,
        headers: { "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        let pending = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          const at = nowMs();
          if (Number.isNaN(ttft)) ttft = at - t0;
          pending += chunk;
          let nl = pending.indexOf("\n");
          while (nl >= 0) {
            lines++;
            onLine?.(pending.slice(0, nl), at);
            pending = pending.slice(nl + 1);
            nl = pending.indexOf("\n");
          }
        });
        res.on("end", () => resolve({ ttft, lines }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function ttftBench(routes: Route[], iterations: number) {
  const rows = [];
  const body = { model: "llama3.2", messages: [{ role: "user", content: "hi" }], options: { num_predict: 1 } };
  const samples: Record<string, number[]> = {};
  for (let i = 0; i < iterations; i++) {
    for (const [name, url] of routes) {
      if (!url) continue;
      const { ttft } = await streamChat(url, body);
      samples[name] = [...(samples[name] ?? []), ttft];
    }
  }
  for (const [name] of routes) {
    const s = (samples[name] ?? []).sort((a, b) => a - b);
    rows.push(s.length ? [name, s.length, percentile(s, 50), percentile(s, 99)] : [name, "not installed", "", ""]);
  }
  const at = (p: number) => Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, percentile(v, p)]));
  return { rows, p50: at(50), p99: at(99) };
}

/**
 * Chunk delivery latency: arrival time minus the chunk's own created_at (stamped by the simulator as it
 * writes). The routes take turns in rounds of 100 chunks (the order rotating each round), so a burst of
 * other work on the machine lands on every route alike instead of on whichever one was streaming then.
 * Each stream's first chunk is left out: it comes with the headers, and is the time to first token.
 */
async function chunkLatencyBench(routes: Route[], tokens: number) {
  const rows = [];
  const stats: Record<string, { p50: number; p99: number }> = {};
  const live = routes.filter((r): r is [string, string] => r[1] !== null);
  const latencies: Record<string, number[]> = Object.fromEntries(live.map(([name]) => [name, []]));
  const perRound = Math.min(100, tokens);
  const rounds = Math.max(1, Math.round(tokens / perRound));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < live.length; i++) {
      const [name, url] = live[(round + i) % live.length]!;
      let first = true;
      await streamChat(
        url,
        { model: "qwen3:8b", messages: [{ role: "user", content: "latency" }], options: { num_predict: perRound } },
        (line, at) => {
          // A stream's first chunk travels with its headers: that is the time to first token, measured above.
          if (first) {
            first = false;
            return;
          }
          const created = parseCreatedAt((JSON.parse(line) as { created_at: string }).created_at);
          latencies[name]!.push(at - created);
        },
      );
    }
  }
  for (const [name, url] of routes) {
    if (!url) {
      rows.push([name, "not installed", "", ""]);
      continue;
    }
    const sorted = latencies[name]!.sort((a, b) => a - b);
    stats[name] = { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
    rows.push([name, sorted.length, stats[name].p50, stats[name].p99]);
  }
  return { rows, stats };
}

async function throughputBench(routes: Route[], tokens: number) {
  const rows = [];
  const rates: Record<string, number> = {};
  for (const [name, url] of routes) {
    if (!url) {
      rows.push([name, "not installed", "", ""]);
      continue;
    }
    const t0 = nowMs();
    const { lines } = await streamChat(url, {
      model: "gemma3:4b",
      messages: [{ role: "user", content: "firehose" }],
      options: { num_predict: tokens },
    });
    const seconds = (nowMs() - t0) / 1000;
    rates[name] = lines / seconds;
    rows.push([name, lines, seconds, rates[name]]);
  }
  return { rows, rates };
}

/**
 * Time to first token with an idle queue, per-chunk added latency, and the most chunks per second
 * one stream sustains, for foreman vs direct vs nginx in one run.
 */
export async function benchGeneration(iterations: number, chunks = 1000) {
  // Three simulators so each measurement gets the token rate it needs.
  const fast = await startSim(["--load-ms", "0", "--tps", "1000000"]);
  const paced = await startSim(["--load-ms", "0", "--tps", "200"]);
  const nginxPath = findNginx();
  const out: Array<{ title: string; table: string; summary: string[] }> = [];
  const rows: SummaryRow[] = [];
  // A figure added over direct-to-the-target, and nginx's added figure beside it.
  const added = (m: Record<string, number>, digits: number) => ({
    foreman: m.foreman! - m.direct!,
    reference: `${m.nginx === undefined ? "nginx n/a (not installed)" : `nginx +${(m.nginx - m.direct!).toFixed(digits)}`}; two Node hops +${(m["two Node hops"]! - m.direct!).toFixed(digits)}`,
  });
  try {
    // TTFT and throughput against the fast simulator.
    {
      const foreman = await startForeman(fast.url);
      const nginx = nginxPath ? await startNginx(nginxPath, fast.port) : null;
      const hops = await startTwoHops(fast.url);
      const routes: Route[] = [
        ["direct", fast.url],
        ["nginx", nginx?.url ?? null],
        ["two Node hops", hops.url],
        ["foreman", foreman.url],
      ];
      try {
        // Warm: load the models through each route once.
        for (const [, url] of routes)
          if (url) await streamChat(url, { model: "llama3.2", messages: [], options: { num_predict: 1 } });
        const ttft = await ttftBench(routes, iterations);
        out.push({
          title: `time to first token, idle queue (${iterations} sequential requests, num_predict 1)`,
          table: table(["route", "requests", "TTFT p50 ms", "TTFT p99 ms"], ttft.rows),
          summary: [
            `added TTFT p50, foreman over direct: ${(ttft.p50.foreman! - ttft.p50.direct!).toFixed(2)} ms (goal ≤ 3 ms; p99 ≤ 10 ms)`,
          ],
        });
        rows.push(
          { measure: "added time to first token p50, idle queue, ms", ...added(ttft.p50, 2), goal: "≤ 3 ms" },
          { measure: "added time to first token p99, idle queue, ms", ...added(ttft.p99, 2), goal: "≤ 10 ms" },
        );
        const tput = await throughputBench(routes, 50_000);
        rows.push({
          measure: "one stream's chunks/s",
          foreman: tput.rates.foreman!,
          reference: `direct ${tput.rates.direct!.toFixed(0)}${tput.rates.nginx === undefined ? "; nginx n/a (not installed)" : `; nginx ${tput.rates.nginx.toFixed(0)}`}`,
          goal: "≥ 5,000",
        });
        out.push({
          title: "one stream's throughput (50,000 one-token chunks from a 1,000,000 tokens/s simulator)",
          table: table(["route", "chunks", "seconds", "chunks/s"], tput.rows),
          summary: [`foreman sustains ${tput.rates.foreman!.toFixed(0)} chunks/s on one stream (goal ≥ 5,000)`],
        });
      } finally {
        await Promise.all([foreman.stop(), nginx?.stop(), hops.stop()]);
      }
    }
    // Per-chunk latency against a paced simulator (5 ms between chunks, so every chunk travels alone).
    {
      const foreman = await startForeman(paced.url);
      const nginx = nginxPath ? await startNginx(nginxPath, paced.port) : null;
      const hops = await startTwoHops(paced.url);
      const routes: Route[] = [
        ["direct", paced.url],
        ["nginx", nginx?.url ?? null],
        ["two Node hops", hops.url],
        ["foreman", foreman.url],
      ];
      try {
        for (const [, url] of routes)
          if (url) await streamChat(url, { model: "qwen3:8b", messages: [], options: { num_predict: 1 } });
        const lat = await chunkLatencyBench(routes, chunks);
        rows.push({
          measure: "added per-chunk latency p99, ms",
          ...added(Object.fromEntries(Object.entries(lat.stats).map(([k, v]) => [k, v.p99])), 3),
          goal: "≤ 1 ms",
        });
        out.push({
          title: `per-chunk delivery latency (${chunks.toLocaleString("en")} chunks per route at 200 tokens/s, routes taking turns in rounds of 100, each stream's first chunk left out; arrival minus the chunk's created_at)`,
          table: table(["route", "chunks", "p50 ms", "p99 ms"], lat.rows),
          summary: [
            `added per-chunk latency, foreman over direct: p50 ${(lat.stats.foreman!.p50 - lat.stats.direct!.p50).toFixed(3)} ms, p99 ${(lat.stats.foreman!.p99 - lat.stats.direct!.p99).toFixed(3)} ms (goal p99 ≤ 1 ms)`,
          ],
        });
      } finally {
        await Promise.all([foreman.stop(), nginx?.stop(), hops.stop()]);
      }
    }
  } finally {
    await Promise.all([fast.stop(), paced.stop()]);
    agent.destroy();
  }
  return { sections: out, rows };
}

/**
 * Drain-by-model vs FIFO on a stated mixed workload: one 400-token job, then 60 chat jobs submitted at once
 * while it runs, round-robin over three models (so FIFO order switches model on every job), each model taking
 * 500 ms to load, 20 tokens per job at 1,000 tokens/s, one model slot. FIFO is foreman itself with
 * FOREMAN_STARVATION_MS=0 (the oldest job always wins).
 */
export async function benchDrain(jobs = 60) {
  const models = ["llama3.2:latest", "qwen3:8b", "gemma3:4b"];
  const rows = [];
  const results: Record<string, { loads: number; seconds: number }> = {};
  for (const [policy, starvation] of [
    ["drain-by-model", "600000"],
    ["FIFO", "0"],
  ] as const) {
    const sim = await startSim(["--load-ms", "500", "--tps", "1000", "--max-loaded", "1"]);
    const foreman = await startForeman(sim.url, { FOREMAN_STARVATION_MS: starvation });
    try {
      // Occupy the worker so all 60 are queued before the first claim of the batch.
      const blocker = streamChat(foreman.url, { model: models[0], messages: [], options: { num_predict: 400 } });
      await new Promise((r) => setTimeout(r, 200));
      const t0 = nowMs();
      await Promise.all(
        Array.from({ length: jobs }, (_, i) =>
          streamChat(foreman.url, {
            model: models[i % 3],
            messages: [{ role: "user", content: `job ${i}` }],
            options: { num_predict: 20 },
          }),
        ),
      );
      await blocker;
      const seconds = (nowMs() - t0) / 1000;
      const after = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as { loads: { total: number } };
      // Every load of the run counts, the blocker's included: a fresh simulator starts with none.
      results[policy] = { loads: after.loads.total, seconds };
      rows.push([policy, jobs + 1, results[policy].loads, seconds]);
    } finally {
      await foreman.stop();
      await sim.stop();
    }
  }
  const drain = results["drain-by-model"]!;
  const fifo = results.FIFO!;
  return {
    sections: [
      {
        title: `drain-by-model vs FIFO (1 + ${jobs} jobs round-robin over 3 models, 500 ms load, 20 tokens at 1,000 tokens/s)`,
        table: table(["policy", "jobs", "model loads", "total seconds"], rows),
        summary: [
          `drain-by-model: ${drain.loads} loads for 3 distinct models (goal: equal to the number of distinct models); FIFO: ${fifo.loads} loads`,
        ],
      },
    ],
    rows: [
      {
        measure: `drain: model loads for 1 + ${jobs} jobs over 3 models`,
        foreman: drain.loads,
        reference: `FIFO ${fifo.loads}`,
        goal: "= 3",
      },
      {
        measure: `drain: total seconds for 1 + ${jobs} jobs over 3 models`,
        foreman: drain.seconds,
        reference: `FIFO ${fifo.seconds.toFixed(2)}`,
        goal: "—",
      },
    ] satisfies SummaryRow[],
  };
}
