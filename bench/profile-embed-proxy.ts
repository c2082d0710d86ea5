import fs from "node:fs";
import path from "node:path";
import { findWrk, freePort, makeTempDir, ROOT, runWrk, startProcess, startSim } from "./lib.js";

/**
 * Where the gateway spends its time on the `/api/embed` pass-through: the built gateway runs under
 * `node --cpu-prof` against the simulator while wrk loads it at concurrency 32, then the profile's samples
 * are summed by function and by layer (Node's HTTP client and server, streams, foreman's own code,
 * prom-client, GC) and printed per request. Run it with `node --import tsx bench/profile-embed-proxy.ts`
 * after `pnpm build`; BENCH_DURATION_MS sets the load's length (default 10 s). The profile samples wall-clock
 * time on the gateway's main thread: a sample taken while the thread waits in a system call (or is
 * descheduled in one) counts for the JavaScript function that made the call, so `writev` holds the kernel's
 * loopback send and any time the gateway lost its core to the process it woke.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

/** The layer a sampled function belongs to, by its script. */
function layerOf({ functionName, url }: ProfileNode["callFrame"]): string {
  if (functionName === "(idle)") return "idle";
  if (functionName === "(garbage collector)") return "GC";
  if (functionName === "(program)") return "V8 and native code not attributed";
  if (url.includes("prom-client")) return "prom-client";
  if (url.includes("/packages/")) return "foreman";
  if (url.includes("node_modules")) return "other npm packages (module loading, start-up)";
  if (/_http_client|_http_agent/.test(url)) return "Node HTTP client (ClientRequest, Agent)";
  if (/_http_(server|incoming|outgoing|common)/.test(url)) return "Node HTTP server and shared parser glue";
  if (/streams|stream_base/.test(url)) return "Node streams";
  if (url === "") return functionName === "writev" ? "writev (system call: loopback send)" : "other native calls";
  return "Node events, timers, task queue, net";
}

async function main() {
  const wrk = findWrk();
  if (!wrk) throw new Error("wrk is not installed (apt-get install wrk)");
  const durationMs = Number(process.env.BENCH_DURATION_MS ?? 10_000);
  const embedder = "nomic-embed-text:latest";
  const body = JSON.stringify({ model: embedder, input: "The quick brown fox jumps over the lazy dog" });
  const profileDir = makeTempDir("foreman-profile-");
  const sim = await startSim(["--load-ms", "0"]);
  const port = await freePort();
  const gateway = await startProcess(
    process.execPath,
    ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, path.join(ROOT, "packages/gateway/dist/main.js")],
    {
      PATH: process.env.PATH,
      FOREMAN_PORT: String(port),
      FOREMAN_DATA_DIR: makeTempDir("foreman-bench-"),
      FOREMAN_OLLAMA_URL: sim.url,
      FOREMAN_LOG_LEVEL: "info",
      FOREMAN_EMBED_MODEL: embedder,
    },
    /gateway listening/,
  );
  let result: ReturnType<typeof runWrk>;
  try {
    await fetch(`${sim.url}/api/embed`, { method: "POST", body });
    result = runWrk({ wrk, url: `http://127.0.0.1:${port}/api/embed`, body, concurrency: 32, durationMs });
  } finally {
    // The profile is written when the gateway exits.
    await Promise.all([gateway.stop(), sim.stop()]);
  }
  const file = fs.readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error("the gateway wrote no profile");
  const profile = JSON.parse(fs.readFileSync(path.join(profileDir, file), "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const layers = new Map<string, number>();
  const functions = new Map<string, number>();
  let idle = 0;
  for (const id of profile.samples) {
    const frame = byId.get(id)!.callFrame;
    const layer = layerOf(frame);
    if (layer === "idle") {
      idle++;
      continue;
    }
    layers.set(layer, (layers.get(layer) ?? 0) + 1);
    const where = frame.url
      ? ` ${frame.url.replace(/^.*\/(node_modules|packages)\//, "$1/")}:${frame.lineNumber + 1}`
      : "";
    const name = `${frame.functionName || "(anonymous)"}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + 1);
  }
  const busy = profile.samples.length - idle;
  const usPerSample = (profile.endTime - profile.startTime) / profile.samples.length;
  const perRequest = (samples: number) => ((samples * usPerSample) / result.requests).toFixed(1);
  const share = (samples: number) => `${((100 * samples) / busy).toFixed(1)} %`;
  console.log(
    `${result.requests} requests in ${result.seconds} s (${result.rps.toFixed(0)} req/s, wrk, concurrency 32); ` +
      `${busy} busy and ${idle} idle samples; busy ${perRequest(busy)} µs per request (wall-clock samples)\n`,
  );
  console.log("by layer (share of busy samples, µs per request):");
  for (const [layer, n] of [...layers].sort((a, b) => b[1] - a[1]))
    console.log(`  ${share(n).padStart(7)}  ${perRequest(n).padStart(6)}  ${layer}`);
  console.log("\ntop functions by self time:");
  for (const [name, n] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, 30))
    console.log(`  ${share(n).padStart(7)}  ${name}`);
}

await main();
