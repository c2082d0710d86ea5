import { type LoadKey, loadKeyText } from "@foreman/shared";
import { expect } from "chai";
import type { SimEvent, Simulator } from "../../ollama-sim/src/index.js";
import { createModelResidency } from "../src/model-residency.js";
import { captureLog, harness } from "./harness.js";

/** A load key with no runner options, unless given. */
const key = (model: string, runnerOptions = ""): LoadKey => ({ model, runnerOptions });

describe("model-residency", () => {
  const h = harness();

  /** A residency over a real target client talking to the simulator, recording its switches and the sim's unloads. */
  async function setup(embedModel: string | undefined = "nomic-embed-text") {
    const sim = await h.sim();
    const client = h.client(sim.url);
    const log = captureLog();
    const switches: Array<[string | null, string]> = [];
    const residency = createModelResidency({
      client,
      logger: log.logger,
      embedModel,
      onModelSwitch: (from, to) => switches.push([from && loadKeyText(from), loadKeyText(to)]),
    });
    const unloads: string[] = [];
    sim.on((event: SimEvent) => {
      if (event.type === "unload") unloads.push(event.model);
    });
    return { sim, client, residency, switches, unloads, log };
  }

  /** Loads models in the simulator as the worker's jobs and the poller's pin would. */
  async function load(sim: Simulator, model: string, keepAlive?: number) {
    const embedder = model.includes("embed");
    const res = await fetch(`${sim.url}/api/${embedder ? "embed" : "generate"}`, {
      method: "POST",
      body: JSON.stringify(
        embedder
          ? { model, input: [], keep_alive: keepAlive ?? -1 }
          : { model, prompt: "hi", stream: false, options: { num_predict: 1 } },
      ),
    });
    expect(res.status, `loading ${model}`).to.equal(200);
    await res.text();
  }
  const loaded = (sim: Simulator) => sim.loaded().map((m) => m.name);

  it("knows the model the target answered with, under its normalized name", async () => {
    const { residency } = await setup();
    expect(residency.resident()).to.equal(null);
    residency.answered(key("llama3.2"));
    expect(residency.resident()).to.deep.equal(key("llama3.2:latest"));
  });

  it("counts a job of the same model with other runner options as a load, and unloads nothing for it", async () => {
    const { sim, residency, switches, unloads } = await setup();
    await load(sim, "nomic-embed-text");
    await load(sim, "llama3.2");
    residency.answered(key("llama3.2", "num_ctx=2048"));
    await residency.prepareFor(key("llama3.2", "num_ctx=2048"));
    expect(residency.resident(), "same load key: kept").to.deep.equal(key("llama3.2:latest", "num_ctx=2048"));
    await residency.prepareFor(key("llama3.2", "num_ctx=8192"));
    expect(residency.resident(), "the target reloads it: unknown until it answers").to.equal(null);
    expect(unloads, "the target reloads the model in place; the embedder stays").to.deep.equal([]);
    residency.answered(key("llama3.2", "num_ctx=8192"));
    residency.answered(key("llama3.2", "num_ctx=8192"));
    residency.answered(key("llama3.2"));
    expect(switches).to.deep.equal([
      [null, "llama3.2:latest num_ctx=2048"],
      ["llama3.2:latest num_ctx=2048", "llama3.2:latest num_ctx=8192"],
      ["llama3.2:latest num_ctx=8192", "llama3.2:latest"],
    ]);
  });

  it("keeps the model for a job of the same model (tag or no tag): no unload, no switch", async () => {
    const { sim, residency, switches, unloads } = await setup();
    await load(sim, "llama3.2");
    residency.answered(key("llama3.2:latest"));
    expect(switches, "the first answer is the first load").to.deep.equal([[null, "llama3.2:latest"]]);
    await residency.prepareFor(key("llama3.2"));
    residency.answered(key("llama3.2"));
    expect(switches).to.have.length(1);
    expect(unloads).to.deep.equal([]);
    expect(residency.resident()).to.deep.equal(key("llama3.2:latest"));
  });

  it("unloads the previous worker model before a switch, and never the pinned embedder", async () => {
    const { sim, residency, switches, unloads, log } = await setup();
    await load(sim, "nomic-embed-text");
    await load(sim, "llama3.2");
    residency.answered(key("llama3.2"));
    switches.length = 0;
    await residency.prepareFor(key("qwen3:8b"));
    expect(unloads).to.deep.equal(["llama3.2:latest"]);
    expect(loaded(sim)).to.deep.equal(["nomic-embed-text:latest"]);
    expect(switches, "a load is counted when the target answers, not before").to.deep.equal([]);
    expect(residency.resident(), "unknown until the target answers a job of the new model").to.equal(null);
    residency.answered(key("qwen3:8b"));
    expect(switches).to.deep.equal([["llama3.2:latest", "qwen3:8b"]]);
    expect(await log.waitFor("model unloaded")).to.include({ model: "llama3.2:latest", next_model: "qwen3:8b" });
  });

  it("does not count the embedder as the worker model, whatever its tag", async () => {
    // The operator wrote the embedder without a tag; /api/ps names it with ":latest".
    const { sim, residency, switches, unloads } = await setup("nomic-embed-text");
    await load(sim, "nomic-embed-text");
    await residency.prepareFor(key("qwen3:8b"));
    residency.answered(key("qwen3:8b"));
    expect(switches, "nothing was resident but the embedder").to.deep.equal([[null, "qwen3:8b"]]);
    residency.answered(key("nomic-embed-text:latest"));
    await residency.prepareFor(key("llama3.2"));
    expect(unloads).to.deep.equal([]);
    expect(loaded(sim)).to.deep.equal(["nomic-embed-text:latest"]);
  });

  it("keeps the resident model when the target lacks the new one (the job fails with the target's 404)", async () => {
    const { sim, residency, switches, unloads } = await setup();
    await load(sim, "llama3.2");
    residency.answered(key("llama3.2"));
    switches.length = 0;
    await residency.prepareFor(key("nosuch:model"));
    expect(unloads).to.deep.equal([]);
    expect(switches).to.deep.equal([]);
    expect(residency.resident()).to.deep.equal(key("llama3.2:latest"));
    expect(loaded(sim)).to.deep.equal(["llama3.2:latest"]);
  });

  it("asks /api/ps what is resident after forget(), and unloads what it finds there", async () => {
    const { sim, residency, switches, unloads } = await setup();
    await load(sim, "nomic-embed-text");
    await load(sim, "qwen3:8b");
    residency.answered(key("llama3.2")); // a belief the target no longer matches (another client loaded qwen3)
    switches.length = 0;
    residency.forget();
    expect(residency.resident()).to.equal(null);
    sim.resetStats();
    await residency.prepareFor(key("llama3.2"));
    expect(sim.stats().requests.byRoute["GET /api/ps"]).to.equal(1);
    expect(unloads).to.deep.equal(["qwen3:8b"]);
    residency.answered(key("llama3.2"));
    expect(switches).to.deep.equal([["qwen3:8b", "llama3.2:latest"]]);
  });

  it("asks /api/ps once after a start, then trusts what it learned", async () => {
    const { sim, residency, unloads } = await setup();
    await load(sim, "gemma3:4b");
    sim.resetStats();
    await residency.prepareFor(key("gemma3:4b"));
    expect(residency.resident(), "discovered, and the same model: kept").to.deep.equal(key("gemma3:4b"));
    await residency.prepareFor(key("gemma3:4b"));
    expect(sim.stats().requests.byRoute["GET /api/ps"]).to.equal(1);
    expect(unloads).to.deep.equal([]);
  });

  it("switches anyway when the unload fails, and says so in the log", async () => {
    const log = captureLog();
    const seen: string[] = [];
    const target = await h.loopback((req, res, body) => {
      seen.push(`${req.method} ${req.url} ${body}`);
      if (req.url === "/api/generate") {
        res.writeHead(500, { "content-type": "application/json" }).end('{"error":"unload refused"}');
      } else {
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      }
    });
    const switches: Array<[string | null, string]> = [];
    const residency = createModelResidency({
      client: h.client(target.url),
      logger: log.logger,
      embedModel: undefined,
      onModelSwitch: (from, to) => switches.push([from && loadKeyText(from), loadKeyText(to)]),
    });
    residency.answered(key("llama3.2"));
    switches.length = 0;
    await residency.prepareFor(key("qwen3:8b"));
    residency.answered(key("qwen3:8b"));
    expect(seen).to.deep.equal([
      'POST /api/show {"model":"qwen3:8b"}',
      'POST /api/generate {"model":"llama3.2:latest","keep_alive":0}',
    ]);
    expect(switches).to.deep.equal([["llama3.2:latest", "qwen3:8b"]]);
    expect(await log.waitFor("model unload failed")).to.include({ model: "llama3.2:latest", error: "unload refused" });
  });

  it("treats an unreachable target as holding nothing known: no unload, no load counted, the job finds out itself", async () => {
    const { sim, residency, switches, unloads } = await setup();
    await sim.faults.refuseConnections(600_000);
    await residency.prepareFor(key("llama3.2"));
    expect(residency.resident()).to.equal(null);
    expect(switches).to.deep.equal([]);
    expect(unloads).to.deep.equal([]);
  });

  it("counts a load again when the poller finds the worker model gone (keep-alive expiry), but not from a stale look", async () => {
    let t = 1_000;
    const sim = await h.sim();
    const gone: Array<[string, string]> = [];
    const switches: Array<[string | null, string]> = [];
    const residency = createModelResidency({
      client: h.client(sim.url),
      logger: captureLog().logger,
      embedModel: "nomic-embed-text",
      onModelSwitch: (from, to) => switches.push([from && loadKeyText(from), loadKeyText(to)]),
      onModelUnloaded: (model, reason) => gone.push([model, reason]),
      now: () => t,
    });
    residency.answered(key("llama3.2"));
    switches.length = 0;
    // An /api/ps asked before that answer may predate the load: it says nothing about it.
    residency.observeResident([], 999);
    residency.answered(key("llama3.2"));
    expect(switches).to.deep.equal([]);
    t = 2_000;
    residency.observeResident(["nomic-embed-text:latest"], 1_500);
    expect(gone).to.deep.equal([["llama3.2:latest", "gone"]]);
    expect(residency.resident()).to.equal(null);
    residency.answered(key("llama3.2"));
    expect(switches, "the target loaded it again").to.deep.equal([[null, "llama3.2:latest"]]);
  });

  describe("with more worker slots (a target with room for the embedder and two worker models)", () => {
    /** A residency keeping two worker models beside the embedder, over a simulator that holds three models. */
    async function setupTwo() {
      const sim = await h.sim({ maxLoadedModels: 3 });
      const switches: Array<[string | null, string]> = [];
      const gone: Array<[string, string]> = [];
      let t = 1_000;
      const residency = createModelResidency({
        client: h.client(sim.url),
        logger: captureLog().logger,
        embedModel: "nomic-embed-text",
        workerSlots: 2,
        onModelSwitch: (from, to) => switches.push([from && loadKeyText(from), loadKeyText(to)]),
        onModelUnloaded: (model, reason) => gone.push([model, reason]),
        now: () => t,
      });
      const unloads: string[] = [];
      sim.on((event: SimEvent) => {
        if (event.type === "unload") unloads.push(event.model);
      });
      /** Runs a job the way the job runner does: prepare, then the target answers (a real load on the sim). */
      const job = async (model: string) => {
        await residency.prepareFor(key(model));
        await load(sim, model);
        residency.answered(key(model));
        t += 1;
      };
      return { sim, residency, switches, gone, unloads, job, clock: { set: (v: number) => (t = v) } };
    }
    const names = (keys: readonly LoadKey[]) => keys.map(loadKeyText);

    it("keeps two worker models resident: an agent alternating them pays one load each, and nothing is unloaded", async () => {
      const { sim, residency, switches, unloads, job } = await setupTwo();
      await load(sim, "nomic-embed-text");
      for (let turn = 0; turn < 3; turn++) {
        await job("qwen3:8b");
        await job("llama3.2");
      }
      expect(switches, "each into a free slot").to.deep.equal([
        [null, "qwen3:8b"],
        [null, "llama3.2:latest"],
      ]);
      expect(unloads).to.deep.equal([]);
      expect(sim.stats().loads.total, "the simulator's own count: embedder and two models").to.equal(3);
      expect(names(residency.residents()), "most recently used first").to.deep.equal(["llama3.2:latest", "qwen3:8b"]);
    });

    it("unloads the least recently used worker model when a third needs room, never the embedder", async () => {
      const { sim, residency, switches, unloads, job } = await setupTwo();
      await load(sim, "nomic-embed-text");
      await job("qwen3:8b");
      await job("llama3.2");
      await job("qwen3:8b");
      switches.length = 0;
      await job("gemma3:4b");
      expect(unloads, "llama3.2 was used least recently").to.deep.equal(["llama3.2:latest"]);
      expect(switches, "a swap: it took llama3.2's place").to.deep.equal([["llama3.2:latest", "gemma3:4b"]]);
      expect(names(residency.residents())).to.deep.equal(["gemma3:4b", "qwen3:8b"]);
      expect(sim.stats().evictions.total, "the target never had to evict on its own").to.equal(0);
      expect(loaded(sim)).to.include("nomic-embed-text:latest");
    });

    it("reloads a resident model for other runner options in place, keeping the other worker model", async () => {
      const { sim, residency, switches, unloads } = await setupTwo();
      await load(sim, "nomic-embed-text");
      residency.answered(key("qwen3:8b"));
      residency.answered(key("llama3.2", "num_ctx=2048"));
      switches.length = 0;
      await residency.prepareFor(key("llama3.2", "num_ctx=8192"));
      expect(unloads).to.deep.equal([]);
      expect(names(residency.residents()), "llama3.2's options unknown until it answers").to.deep.equal(["qwen3:8b"]);
      residency.answered(key("llama3.2", "num_ctx=8192"));
      expect(switches).to.deep.equal([["llama3.2:latest num_ctx=2048", "llama3.2:latest num_ctx=8192"]]);
      expect(names(residency.residents())).to.deep.equal(["llama3.2:latest num_ctx=8192", "qwen3:8b"]);
    });

    it("notices each worker model that left on its own (keep-alive expiry) and counts its next answer as a load", async () => {
      const { residency, switches, gone, clock } = await setupTwo();
      residency.answered(key("qwen3:8b"));
      residency.answered(key("llama3.2"));
      switches.length = 0;
      clock.set(5_000);
      residency.observeResident(["nomic-embed-text:latest", "llama3.2:latest"], 5_000);
      expect(gone).to.deep.equal([["qwen3:8b", "gone"]]);
      expect(names(residency.residents())).to.deep.equal(["llama3.2:latest"]);
      residency.answered(key("llama3.2"));
      expect(switches, "llama3.2 stayed: no load").to.deep.equal([]);
      residency.answered(key("qwen3:8b"));
      expect(switches, "qwen3:8b was loaded again, into the free slot").to.deep.equal([[null, "qwen3:8b"]]);
    });

    it("asks /api/ps after forget() and finds both worker models there, the embedder left out", async () => {
      const { sim, residency, unloads } = await setupTwo();
      await load(sim, "nomic-embed-text");
      await load(sim, "qwen3:8b");
      await load(sim, "llama3.2");
      residency.forget();
      await residency.prepareFor(key("qwen3:8b"));
      expect(names(residency.residents()).sort()).to.deep.equal(["llama3.2:latest", "qwen3:8b"]);
      expect(unloads).to.deep.equal([]);
    });

    it("a job of the embedder itself needs no room: no worker model is unloaded for it", async () => {
      const { sim, residency, switches, unloads, job } = await setupTwo();
      await load(sim, "nomic-embed-text");
      await job("qwen3:8b");
      await job("llama3.2");
      switches.length = 0;
      await residency.prepareFor(key("nomic-embed-text:latest"));
      residency.answered(key("nomic-embed-text:latest"));
      expect(unloads).to.deep.equal([]);
      expect(switches).to.deep.equal([]);
      expect(names(residency.residents())).to.deep.equal(["llama3.2:latest", "qwen3:8b"]);
    });
  });
});
