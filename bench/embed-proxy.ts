import {
  findNginx,
  findWrk,
  type LoadResult,
  median,
  runLoad,
  runWrk,
  type SummaryRow,
  startGateway,
  startNginx,
  startSim,
  table,
} from "./lib.js";

/**
 * /api/embed through the gateway, direct to the simulator, and through nginx, in one run, at
 * concurrency 1 and 32. The simulator, gateway and nginx are separate processes on loopback; the load
 * generator is this process. All of them share the machine's two cores.
 */
export async function benchEmbedProxy(durationMs: number, roundsPerRoute = 3) {
  const embedder = "nomic-embed-text:latest";
  const sim = await startSim(["--load-ms", "0"]);
  const gateway = await startGateway(sim.url, { FOREMAN_EMBED_MODEL: embedder });
  const nginxPath = findNginx();
  const nginx = nginxPath ? await startNginx(nginxPath, sim.port) : null;
  const wrk = findWrk();
  const body = JSON.stringify({ model: embedder, input: "The quick brown fox jumps over the lazy dog" });
  const routes: Array<[string, string | null]> = [
    ["direct", sim.url],
    ["nginx", nginx?.url ?? null],
    ["foreman", gateway.url],
  ];
  const results: Record<string, Record<number, LoadResult | null>> = {};
  try {
    // Load the embedder once so no run pays for it.
    await fetch(`${sim.url}/api/embed`, { method: "POST", body });
    // Rounds interleave the three routes so drift in the machine's load hits them alike; the median
    // round (by req/s) of each is reported.
    for (const concurrency of [1, 32]) {
      const rounds: Record<string, LoadResult[]> = {};
      for (let round = 0; round < roundsPerRoute; round++) {
        for (const [name, url] of routes) {
          if (!url) continue;
          const load = { url: `${url}/api/embed`, body, concurrency, durationMs };
          const result = wrk ? runWrk({ wrk, ...load }) : await runLoad(load);
          rounds[name] = [...(rounds[name] ?? []), result];
        }
      }
      for (const [name] of routes) {
        results[name] ??= {};
        results[name][concurrency] = rounds[name] ? median(rounds[name]) : null;
      }
    }
  } finally {
    await Promise.all([gateway.stop(), sim.stop(), nginx?.stop()]);
  }
  const rows = [];
  for (const concurrency of [1, 32]) {
    for (const [name] of routes) {
      const r = results[name]?.[concurrency];
      rows.push(
        r ? [name, concurrency, r.rps, r.p50, r.p99, r.errors] : [name, concurrency, "nginx not installed", "", "", ""],
      );
    }
  }
  const direct1 = results.direct?.[1];
  const foreman1 = results.foreman?.[1];
  const nginx32 = results.nginx?.[32];
  const foreman32 = results.foreman?.[32];
  const summary = [
    `added p50 at concurrency 1, foreman over direct: ${direct1 && foreman1 ? (foreman1.p50 - direct1.p50).toFixed(3) : "n/a"} ms (goal ≤ 0.2 ms)`,
    `foreman throughput at concurrency 32 as a share of nginx's: ${nginx32 && foreman32 ? ((100 * foreman32.rps) / nginx32.rps).toFixed(1) : "n/a"} % (goal >= 80 %)`,
  ];
  const generator = wrk ? "wrk" : "Node load generator";
  const summaryRows: SummaryRow[] = [
    {
      measure: `/api/embed at concurrency 32, req/s (${generator})`,
      foreman: foreman32
        ? `${foreman32.rps.toFixed(0)} (${nginx32 ? `${((100 * foreman32.rps) / nginx32.rps).toFixed(1)} % of nginx` : "no nginx"})`
        : "n/a",
      reference: nginx32
        ? `nginx ${nginx32.rps.toFixed(0)}; direct ${results.direct?.[32]?.rps.toFixed(0)}`
        : "n/a (nginx not installed)",
      goal: "≥ 80 % of nginx with wrk",
    },
  ];
  if (!wrk)
    summaryRows.push({
      measure: "/api/embed at concurrency 32, req/s (wrk)",
      foreman: "n/a (wrk not installed)",
      reference: "n/a (wrk not installed)",
      goal: "≥ 80 % of nginx with wrk",
    });
  const nginx1 = results.nginx?.[1];
  summaryRows.push({
    measure: `/api/embed added p50 at concurrency 1, ms over direct (${generator})`,
    foreman: direct1 && foreman1 ? foreman1.p50 - direct1.p50 : "n/a",
    reference: direct1 && nginx1 ? `nginx +${(nginx1.p50 - direct1.p50).toFixed(3)}` : "n/a (nginx not installed)",
    goal: "≤ 0.2 ms",
  });
  return {
    sections: [
      {
        title: `/api/embed passthrough (load from ${wrk ? "wrk" : "the Node load generator"})`,
        table: table(["route", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"], rows),
        summary,
      },
    ],
    rows: summaryRows,
  };
}
