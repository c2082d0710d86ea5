import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

const MODEL_A = "llama3.2:latest";
const MODEL_B = "qwen3:8b";

/** The sum of a counter's samples over every label set, from a Prometheus text scrape. */
function counterTotal(scrape: string, name: string): number {
  return scrape
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

describe("e2e: the drain groups jobs by load key (model and runner options)", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;

  before(async () => {
    // One model slot, as a target with room for one worker model; no embedder, so every load is a job's.
    sim = await startSimulator({ loadMs: 20, tokensPerSecond: 2000, maxLoadedModels: 1 });
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_QUEUE_POLL_MS: "500" } });
    await f.startGateway();
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("one model alternating num_ctx 2048/8192 among another model's jobs costs one load per group", async () => {
    // Queued before the worker starts, so the drain sees them all at once: A 2048, B, A 8192, B, A 2048…
    const bodies = Array.from({ length: 12 }, (_, i) => {
      const options: Record<string, unknown> = { num_predict: 3 };
      if (i % 2 === 0) options.num_ctx = i % 4 === 0 ? 2048 : 8192;
      return { model: i % 2 === 0 ? MODEL_A : MODEL_B, prompt: `job ${i}`, options };
    });
    const ids: string[] = [];
    for (const body of bodies) {
      const res = await fetch(`${f.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(res.status, await res.clone().text()).to.equal(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const groups = new Set(bodies.map((b) => `${b.model} ${String(b.options.num_ctx ?? "")}`));
    expect(groups.size).to.equal(3);

    f.startWorker();
    for (const id of ids) expect((await f.endedJob(id)).state, id).to.equal("done");

    const loads = sim.stats().loads;
    expect(loads.total, JSON.stringify(loads)).to.equal(groups.size);
    expect(loads.byModel).to.deep.equal({ [MODEL_A]: 2, [MODEL_B]: 1 });
    const scrape = await (await fetch(`${f.url}/metrics`)).text();
    expect(counterTotal(scrape, "foreman_model_loads_total")).to.equal(loads.total);
  });
});
