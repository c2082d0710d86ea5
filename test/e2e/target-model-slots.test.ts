import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

const EMBEDDER = "nomic-embed-text:latest";
const ARCHITECT = "qwen3:8b";
const EDITOR = "llama3.2:latest";
const BATCH_MODELS = [EDITOR, ARCHITECT, "gemma3:4b"];
const NUM_CTX = [2048, 8192];

/** The sum of a counter's samples over every label set, from a Prometheus text scrape. */
function counterTotal(scrape: string, name: string): number {
  return scrape
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

async function post(url: string, body: object): Promise<Response> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status, `POST ${url}: ${await res.clone().text()}`).to.be.oneOf([200, 202]);
  return res;
}

describe("e2e: a target with three model slots (FOREMAN_TARGET_MODEL_SLOTS=3)", function () {
  this.timeout(90_000);
  let sim: Simulator;
  let f: Foreman;

  before(async () => {
    // Room for the embedder and two worker models, as OLLAMA_MAX_LOADED_MODELS=3.
    sim = await startSimulator({ loadMs: 20, tokensPerSecond: 2000, maxLoadedModels: 3 });
    f = await foreman({
      ollamaUrl: sim.url,
      env: { FOREMAN_EMBED_MODEL: EMBEDDER, FOREMAN_TARGET_MODEL_SLOTS: "3", FOREMAN_QUEUE_POLL_MS: "500" },
    });
    await f.startGateway();
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("an agent alternating two models behind a queued batch costs one load per (model, options) group, and the embedder stays", async () => {
    // The batch: three models × two num_ctx, round-robin, so arrival order changes group at every job.
    const groups = BATCH_MODELS.flatMap((model) => NUM_CTX.map((numCtx) => ({ model, numCtx })));
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      for (const { model, numCtx } of groups) {
        const res = await post(`${f.url}/jobs`, {
          model,
          prompt: `batch ${i}`,
          options: { num_ctx: numCtx, num_predict: 3 },
        });
        ids.push(((await res.json()) as { id: string }).id);
      }
    }

    // The agent: embed, then a call that waits for its answer, alternating architect and editor. Its first
    // call is queued behind the whole batch before the worker starts.
    const queuedFrom = f.gateway!.lines.length;
    const agentCalls: string[] = [];
    const agent = (async () => {
      for (let turn = 0; turn < 4; turn++) {
        for (const model of [ARCHITECT, EDITOR]) {
          await (await post(`${f.url}/api/embed`, { model: EMBEDDER, input: `context ${turn}` })).arrayBuffer();
          const res = await post(`${f.url}/api/chat`, {
            model,
            messages: [{ role: "user", content: `turn ${turn}` }],
            options: { num_predict: 3 },
            stream: false,
          });
          agentCalls.push(((await res.json()) as { model: string }).model);
        }
      }
    })();
    await f.gateway!.waitForLog("job queued", 10_000, queuedFrom);

    f.startWorker();
    await agent;
    for (const id of ids) expect((await f.endedJob(id)).state, id).to.equal("done");
    expect(agentCalls).to.have.length(8);

    // The embedder, the six batch groups, and the agent's two models at their default options.
    const minimum = 1 + groups.length + 2;
    const stats = sim.stats();
    expect(stats.loads.total, JSON.stringify(stats.loads)).to.equal(minimum);
    expect(stats.loads.byModel[EMBEDDER]).to.equal(1);
    expect(stats.evictions.total, "foreman made room itself: the target never evicted").to.equal(0);
    expect(stats.unloads.byModel[EMBEDDER] ?? 0, "the embedder was never unloaded").to.equal(0);
    expect(sim.loaded().map((m) => m.name)).to.include(EMBEDDER);
    // foreman counts the loads its jobs cost (the embedder's pin is not a job's).
    const scrape = await (await fetch(`${f.url}/metrics`)).text();
    expect(counterTotal(scrape, "foreman_model_loads_total")).to.equal(stats.loads.total - 1);
  });
});
