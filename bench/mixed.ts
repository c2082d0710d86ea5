import { type SummaryRow, startForeman, startSim, table } from "./lib.js";

const EMBEDDER = "nomic-embed-text:latest";
const ARCHITECT = "qwen3:8b";
const EDITOR = "llama3.2:latest";
const BATCH_MODELS = ["llama3.2:latest", "qwen3:8b", "gemma3:4b"];
const NUM_CTX = [8192, 16384];

export interface MixedWorkload {
  /** The simulator's model load time: a load of seconds, scaled down. */
  loadMs: number;
  /** Tokens per second of one stream on the simulator. */
  tps: number;
  /** Agent turns; each turn embeds, asks the architect, embeds, asks the editor. */
  turns: number;
  agentTokens: number;
  /** Batch jobs per (model, num_ctx) group. */
  perGroup: number;
  batchTokens: number;
  /** How many batch requests an Ollama client keeps in flight when it sends the batch straight to Ollama. */
  clientConcurrency: number;
}

export const FULL_WORKLOAD: MixedWorkload = {
  loadMs: 800,
  tps: 500,
  turns: 8,
  agentTokens: 100,
  perGroup: 4,
  batchTokens: 50,
  clientConcurrency: 4,
};

export const SMALL_WORKLOAD: MixedWorkload = {
  loadMs: 300,
  tps: 1000,
  turns: 3,
  agentTokens: 60,
  perGroup: 2,
  batchTokens: 30,
  clientConcurrency: 4,
};

interface ChatBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  options: Record<string, number>;
  stream: false;
}

/** The batch in arrival order: round-robin over the six (model, num_ctx) groups, so FIFO changes group every job. */
function batchBodies(w: MixedWorkload): ChatBody[] {
  const groups = BATCH_MODELS.flatMap((model) => NUM_CTX.map((numCtx) => ({ model, numCtx })));
  const out: ChatBody[] = [];
  for (let i = 0; i < w.perGroup; i++) {
    for (const [g, { model, numCtx }] of groups.entries()) {
      out.push({
        model,
        messages: [{ role: "user", content: `batch item ${i}-${g}` }],
        options: { num_ctx: numCtx, num_predict: w.batchTokens },
        stream: false,
      });
    }
  }
  return out;
}

async function post(url: string, body: object): Promise<Response> {
  const res = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
  return res;
}

/** The agent: turn after turn, embed then architect, embed then editor; each call waits for the previous answer. */
async function agent(url: string, w: MixedWorkload): Promise<void> {
  for (let t = 0; t < w.turns; t++) {
    for (const model of [ARCHITECT, EDITOR]) {
      await (await post(`${url}/api/embed`, { model: EMBEDDER, input: `context for turn ${t}` })).arrayBuffer();
      await (
        await post(`${url}/api/chat`, {
          model,
          messages: [{ role: "user", content: `turn ${t}` }],
          options: { num_predict: w.agentTokens },
          stream: false,
        })
      ).arrayBuffer();
    }
  }
}

async function simStats(simUrl: string) {
  const s = (await (await fetch(`${simUrl}/_sim/stats`)).json()) as {
    loads: { total: number };
    evictions: { total: number };
  };
  return { loads: s.loads.total, evictions: s.evictions.total };
}

/** Ollama alone: the agent and a batch client talk to the simulator directly, which serves them as they arrive. */
async function runDirect(w: MixedWorkload) {
  const sim = await startSim(simArgs(w));
  try {
    const t0 = performance.now();
    const bodies = batchBodies(w);
    let next = 0;
    const batch = Promise.all(
      Array.from({ length: w.clientConcurrency }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          await (await post(`${sim.url}/api/chat`, body)).arrayBuffer();
        }
      }),
    );
    await Promise.all([agent(sim.url, w), batch]);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, ...(await simStats(sim.url)) };
  } finally {
    await sim.stop();
  }
}

/** foreman: the batch goes in as POST /jobs at once, the agent's calls go through the gateway. */
async function runForeman(w: MixedWorkload, env: NodeJS.ProcessEnv) {
  const sim = await startSim(simArgs(w));
  const foreman = await startForeman(sim.url, { FOREMAN_EMBED_MODEL: EMBEDDER, ...env });
  try {
    const t0 = performance.now();
    const ids: string[] = [];
    for (const body of batchBodies(w)) {
      const { stream: _, ...job } = body;
      ids.push(((await (await post(`${foreman.url}/jobs`, job)).json()) as { id: string }).id);
    }
    const batch = Promise.all(
      ids.map(async (id) => {
        for (;;) {
          const job = (await (await fetch(`${foreman.url}/jobs/${id}?wait=60`)).json()) as { state: string };
          if (job.state === "done") return;
          if (job.state === "failed" || job.state === "canceled") throw new Error(`batch job ${id} ${job.state}`);
        }
      }),
    );
    await Promise.all([agent(foreman.url, w), batch]);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, ...(await simStats(sim.url)) };
  } finally {
    await foreman.stop();
    await sim.stop();
  }
}

/** The target's model slots: the embedder and both agent models fit at once. */
const TARGET_SLOTS = 3;

/**
 * Three models fit at once: the embedder and both agent models, so the agent's alternation alone costs no
 * load when the worker uses both worker slots; the batch's third model and any runner-options change do.
 */
function simArgs(w: MixedWorkload): string[] {
  return ["--load-ms", String(w.loadMs), "--tps", String(w.tps), "--max-loaded", String(TARGET_SLOTS)];
}

/**
 * The foreman configurations measured on that target: the default (two slots assumed: one worker model,
 * unloaded at every switch), the target's real slots with the drain by model alone (no runner-options
 * fingerprint), and the target's real slots with the fingerprint, which is the configuration the goal is for.
 */
const FOREMAN_RUNS = [
  { label: "foreman, default (FOREMAN_TARGET_MODEL_SLOTS=2)", env: {} },
  {
    label: `foreman, FOREMAN_TARGET_MODEL_SLOTS=${TARGET_SLOTS}, without the options fingerprint (FOREMAN_DRAIN_BY_RUNNER_OPTIONS=false)`,
    env: { FOREMAN_TARGET_MODEL_SLOTS: String(TARGET_SLOTS), FOREMAN_DRAIN_BY_RUNNER_OPTIONS: "false" },
  },
  {
    label: `foreman, FOREMAN_TARGET_MODEL_SLOTS=${TARGET_SLOTS}, with the options fingerprint`,
    env: { FOREMAN_TARGET_MODEL_SLOTS: String(TARGET_SLOTS) },
  },
] as const;

/**
 * The realistic mixed workload: an agent alternating two chat models (architect and editor) with an
 * embedding before each call, and a batch over three models with two num_ctx values each, started together.
 */
export async function benchMixed(w: MixedWorkload) {
  const batchJobs = BATCH_MODELS.length * NUM_CTX.length * w.perGroup;
  // Distinct (model, runner options) groups, all inside one starvation window (the run is far shorter than
  // the 120 s default): the embedder, the two agent models at default options, the six batch groups.
  const minLoads = 1 + 2 + BATCH_MODELS.length * NUM_CTX.length;
  const generationSeconds = (2 * w.turns * w.agentTokens + batchJobs * w.batchTokens) / w.tps;
  const idealSeconds = generationSeconds + (minLoads * w.loadMs) / 1000;
  const direct = await runDirect(w);
  const runs = [];
  for (const run of FOREMAN_RUNS) runs.push({ ...run, ...(await runForeman(w, run.env)) });
  const [twoSlots, byModel, foreman] = runs as [(typeof runs)[0], (typeof runs)[0], (typeof runs)[0]];
  const within = (s: number) => {
    const over = (100 * s) / idealSeconds - 100;
    return over < 0 ? `${(-over).toFixed(0)} % under` : `${over.toFixed(0)} % over`;
  };
  const rows: SummaryRow[] = [
    {
      measure: `mixed workload: model loads (simulator's counter), foreman with FOREMAN_TARGET_MODEL_SLOTS=${TARGET_SLOTS}`,
      foreman: foreman.loads,
      reference: `Ollama alone (FIFO) ${direct.loads}; foreman default 2 slots ${twoSlots.loads}; without the options fingerprint ${byModel.loads}; minimum ${minLoads}`,
      goal: `= ${minLoads} distinct (model, options) groups`,
    },
    {
      measure: `mixed workload: total seconds, foreman with FOREMAN_TARGET_MODEL_SLOTS=${TARGET_SLOTS}`,
      foreman: foreman.seconds,
      reference: `Ollama alone (FIFO) ${direct.seconds.toFixed(2)}; foreman default 2 slots ${twoSlots.seconds.toFixed(2)}; without the options fingerprint ${byModel.seconds.toFixed(2)}; ideal ${idealSeconds.toFixed(2)}`,
      goal: `≤ ${(1.1 * idealSeconds).toFixed(2)} (ideal + 10 %); foreman ${within(foreman.seconds)}`,
    },
  ];
  return {
    sections: [
      {
        title: `mixed workload: agent ${w.turns} turns × (embed + ${ARCHITECT}, embed + ${EDITOR}), ${w.agentTokens} tokens each; batch of ${batchJobs} jobs over ${BATCH_MODELS.length} models × num_ctx ${NUM_CTX.join("/")}, ${w.batchTokens} tokens each; ${w.loadMs} ms per load, ${w.tps} tokens/s; the simulator holds ${TARGET_SLOTS} models at most (OLLAMA_MAX_LOADED_MODELS=${TARGET_SLOTS})`,
        table: table(
          ["run", "model loads", "evictions", "total seconds"],
          [
            ["Ollama alone (simulator directly, FIFO)", direct.loads, direct.evictions, direct.seconds],
            ...runs.map((r) => [r.label, r.loads, r.evictions, r.seconds]),
            ["minimum: one load per (model, options) group", minLoads, "", idealSeconds],
          ],
        ),
        summary: [
          `foreman runs with FOREMAN_EMBED_MODEL=${EMBEDDER}; its default assumes a two-slot target (the embedder and one worker model, unloaded at each switch), so the agent's alternation costs a load per call there; FOREMAN_TARGET_MODEL_SLOTS=${TARGET_SLOTS} tells it the target holds ${TARGET_SLOTS}`,
          `generation time ${generationSeconds.toFixed(2)} s + ${minLoads} loads × ${w.loadMs} ms = ${idealSeconds.toFixed(2)} s; goal ≤ ${(1.1 * idealSeconds).toFixed(2)} s`,
          `the batch straight to Ollama is sent ${w.clientConcurrency} at a time in arrival order; through foreman it is ${batchJobs} POST /jobs at once`,
        ],
      },
    ],
    rows,
  };
}
