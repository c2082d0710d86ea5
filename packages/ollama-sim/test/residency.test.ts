import { expect } from "chai";
import { ManualClock } from "../src/clock.js";
import type { SimModel } from "../src/interfaces.js";
import { type CatalogModel, ModelCatalog } from "../src/model-catalog.js";
import { Residency, SchedulingCancelled, type UnloadReason } from "../src/residency.js";
import { startSimulator } from "../src/server.js";

const MIN = 60_000;

function setup(maxLoaded = 2, models: SimModel[] = [{ name: "a" }, { name: "b" }, { name: "c" }]) {
  const clock = new ManualClock();
  const catalog = new ModelCatalog(models, { loadMs: 0, tokensPerSecond: 100 }, clock);
  const events: string[] = [];
  const residency = new Residency({
    maxLoaded,
    defaultKeepAliveMs: 5 * MIN,
    clock,
    observer: {
      loadStarted: (m) => events.push(`load ${m.name}`),
      loadFinished: () => {},
      unloaded: (m, reason: UnloadReason) => events.push(`unload ${m.name} ${reason}`),
    },
  });
  const model = (name: string) => catalog.find(name) as CatalogModel;
  return { clock, residency, events, model };
}

describe("residency", () => {
  it("shares one load between concurrent requests for the same model", async () => {
    const { residency, events, model } = setup();
    const leases = await Promise.all([1, 2, 3].map(() => residency.acquire(model("a"), undefined)));
    expect(events).to.deep.equal(["load a:latest"]);
    expect(residency.snapshot()[0]).to.include({ name: "a:latest", activeRequests: 3, state: "ready" });
    for (const lease of leases) lease.release();
    expect(residency.snapshot()[0]?.activeRequests).to.equal(0);
  });

  it("unloads an idle model when its keep-alive runs out, counted from the last release", async () => {
    const { clock, residency, events, model } = setup();
    (await residency.acquire(model("a"), undefined)).release();
    clock.advance(4 * MIN);
    (await residency.acquire(model("a"), undefined)).release();
    clock.advance(4 * MIN);
    expect(residency.isLoaded(model("a").key)).to.equal(true);
    clock.advance(1 * MIN);
    expect(events).to.deep.equal(["load a:latest", "unload a:latest expired"]);
  });

  it("unloads right after the request with keep_alive 0", async () => {
    const { residency, events, model } = setup();
    const lease = await residency.acquire(model("a"), 0);
    expect(residency.isLoaded(model("a").key)).to.equal(true);
    lease.release();
    expect(events).to.deep.equal(["load a:latest", "unload a:latest expired"]);
  });

  it("keeps a pinned model forever and shows it expiring in ~292 years", async () => {
    const { clock, residency, model } = setup();
    (await residency.acquire(model("a"), Number.POSITIVE_INFINITY)).release();
    clock.advance(10 * 365 * 24 * 60 * MIN);
    const [row] = residency.snapshot();
    expect(row?.keepAliveMs).to.equal(null);
    expect(Number(row?.expiresAt.slice(0, 4))).to.be.greaterThan(2300);
  });

  it("keeps the keep-alive of the model when a later request names none", async () => {
    const { clock, residency, model } = setup();
    (await residency.acquire(model("a"), Number.POSITIVE_INFINITY)).release();
    (await residency.acquire(model("a"), undefined)).release();
    clock.advance(60 * MIN);
    expect(residency.isLoaded(model("a").key)).to.equal(true);
    (await residency.acquire(model("a"), 1000)).release();
    clock.advance(1000);
    expect(residency.isLoaded(model("a").key)).to.equal(false);
  });

  it("evicts the idle model with the shortest keep-alive when the slots are full", async () => {
    const { residency, events, model } = setup();
    (await residency.acquire(model("a"), 10 * MIN)).release();
    (await residency.acquire(model("b"), 5 * MIN)).release();
    (await residency.acquire(model("c"), undefined)).release();
    expect(events).to.deep.equal(["load a:latest", "load b:latest", "unload b:latest evicted", "load c:latest"]);
  });

  it("evicts a pinned model when it is the only idle one (as Ollama does)", async () => {
    const { residency, events, model } = setup();
    (await residency.acquire(model("a"), Number.POSITIVE_INFINITY)).release();
    const busy = await residency.acquire(model("b"), 1 * MIN);
    (await residency.acquire(model("c"), undefined)).release();
    expect(events.slice(2)).to.deep.equal(["unload a:latest evicted", "load c:latest"]);
    busy.release();
  });

  it("breaks keep-alive ties by name", async () => {
    const { residency, events, model } = setup();
    (await residency.acquire(model("b"), undefined)).release();
    (await residency.acquire(model("a"), undefined)).release();
    (await residency.acquire(model("c"), undefined)).release();
    expect(events[2]).to.equal("unload a:latest evicted");
  });

  it("waits for a busy victim to finish before evicting it, holding later requests back", async () => {
    const { residency, events, model } = setup();
    const holdA = await residency.acquire(model("a"), 10 * MIN);
    const holdB = await residency.acquire(model("b"), 5 * MIN);
    let cReady = false;
    const c = residency.acquire(model("c"), undefined).then((lease) => {
      cReady = true;
      return lease;
    });
    // A request for an already loaded model queues behind the one waiting for room.
    let aAgain = false;
    const a2 = residency.acquire(model("a"), undefined).then((lease) => {
      aAgain = true;
      return lease;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(cReady).to.equal(false);
    expect(aAgain).to.equal(false);
    holdB.release();
    (await c).release();
    expect(events).to.deep.equal(["load a:latest", "load b:latest", "unload b:latest evicted", "load c:latest"]);
    (await a2).release();
    holdA.release();
  });

  it("unloads on a keep_alive 0 request, at once when idle or after the last request", async () => {
    const { residency, events, model } = setup();
    (await residency.acquire(model("a"), undefined)).release();
    residency.expire(model("a"));
    const hold = await residency.acquire(model("b"), undefined);
    residency.expire(model("b"));
    expect(residency.isLoaded(model("b").key)).to.equal(true);
    hold.release();
    expect(events).to.deep.equal([
      "load a:latest",
      "unload a:latest requested",
      "load b:latest",
      "unload b:latest requested",
    ]);
    residency.expire(model("c")); // not loaded: nothing happens
  });

  it("skips a request whose client went away while it waited", async () => {
    const { residency, events, model } = setup(1);
    const hold = await residency.acquire(model("a"), undefined);
    const abort = new AbortController();
    const waiting = residency.acquire(model("b"), undefined, abort.signal);
    abort.abort();
    hold.release();
    let error: unknown;
    try {
      await waiting;
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(SchedulingCancelled);
    expect(events).to.deep.equal(["load a:latest", "unload a:latest evicted"]);
  });

  it("lists models with the longest remaining keep-alive first", async () => {
    const { residency, model } = setup(3);
    (await residency.acquire(model("a"), 1 * MIN)).release();
    (await residency.acquire(model("b"), Number.POSITIVE_INFINITY)).release();
    (await residency.acquire(model("c"), 30 * MIN)).release();
    expect(residency.snapshot().map((m) => m.name)).to.deep.equal(["b:latest", "c:latest", "a:latest"]);
  });

  it("counts a load that is still in progress as loaded and lets every caller wait for it", async () => {
    const clock = new ManualClock();
    const catalog = new ModelCatalog([{ name: "slow", loadMs: 30 }], { loadMs: 0, tokensPerSecond: 100 }, clock);
    const residency = new Residency({
      maxLoaded: 2,
      defaultKeepAliveMs: MIN,
      clock,
      observer: { loadStarted: () => {}, loadFinished: () => {}, unloaded: () => {} },
    });
    const slow = catalog.find("slow") as CatalogModel;
    const first = residency.acquire(slow, undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(residency.snapshot()[0]?.state).to.equal("loading");
    const leases = await Promise.all([first, residency.acquire(slow, undefined)]);
    expect(residency.snapshot()[0]?.state).to.equal("ready");
    for (const lease of leases) lease.release();
    residency.close();
  });
});

describe("simulator: runner options (num_ctx and the like) force a reload, as Ollama's scheduler does", () => {
  it("loads a model again when a request names other runner options, and shares it when they match", async () => {
    const sim = await startSimulator({ loadMs: 5, tokensPerSecond: 2000 });
    try {
      const unloads: string[] = [];
      sim.on((e) => {
        if (e.type === "unload") unloads.push(e.reason);
      });
      const generate = (options: Record<string, unknown>) =>
        fetch(`${sim.url}/api/generate`, {
          method: "POST",
          body: JSON.stringify({ model: "llama3.2", prompt: "ctx", stream: false, options }),
        }).then((r) => r.json());
      await generate({ num_ctx: 2048 });
      await generate({ num_ctx: 2048, temperature: 0.1 });
      expect(sim.stats().loads.total).to.equal(1);
      await generate({ num_ctx: 8192 });
      expect(sim.stats().loads.total).to.equal(2);
      expect(unloads).to.deep.equal(["reload"]);
    } finally {
      await sim.close();
    }
  });
});
