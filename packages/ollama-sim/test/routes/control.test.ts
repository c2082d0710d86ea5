import { expect } from "chai";
import type { LoadedModel, SimStats } from "../../src/index.js";
import { postJson, simulators } from "../helpers.js";

describe("routes/control", () => {
  const start = simulators();

  it("serves stats, resets counters but not residency", async () => {
    const sim = await start({ token: "t" });
    await postJson(`${sim.url}/api/generate`, { model: "llama3.2" }, { headers: { Authorization: "Bearer t" } });
    const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as SimStats & { loaded: LoadedModel[] };
    expect(stats.loads).to.deep.equal({ total: 1, byModel: { "llama3.2:latest": 1 } });
    expect(stats.requests.byRoute).to.deep.equal({ "POST /api/generate": 1 });
    expect(stats.loaded.map((m) => m.name)).to.deep.equal(["llama3.2:latest"]);
    expect((await fetch(`${sim.url}/_sim/reset`, { method: "POST" })).status).to.equal(200);
    expect(sim.stats().loads.total).to.equal(0);
    expect(sim.stats().requests.total).to.equal(0);
    expect(sim.loaded()).to.have.length(1);
  });

  it("arms and clears faults over HTTP, validating the body", async () => {
    const sim = await start();
    const armed = await postJson(`${sim.url}/_sim/faults`, {
      hang: { count: 2, pathPrefix: "/api/chat" },
      slowFirstToken: { ms: 100 },
    });
    expect(armed.status).to.equal(200);
    expect(await armed.json()).to.deep.include({
      hang: { count: 2, pathPrefix: "/api/chat" },
      slowFirstToken: { ms: 100 },
    });
    const bad = await postJson(`${sim.url}/_sim/faults`, { hang: { count: -1 } });
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.deep.equal({ error: "hang.count must be an integer >= 1" });
    await fetch(`${sim.url}/_sim/faults`, { method: "DELETE" });
    expect(sim.faults.snapshot()).to.deep.include({ hang: null, slowFirstToken: null, dieMidStream: null });
  });

  it("replaces the model library", async () => {
    const sim = await start();
    const res = await fetch(`${sim.url}/_sim/models`, {
      method: "PUT",
      body: JSON.stringify({ models: [{ name: "only-one", tokensPerSecond: 50 }] }),
    });
    expect(res.status).to.equal(200);
    const tags = (await (await fetch(`${sim.url}/api/tags`)).json()) as { models: Array<{ name: string }> };
    expect(tags.models.map((m) => m.name)).to.deep.equal(["only-one:latest"]);
    const bad = await fetch(`${sim.url}/_sim/models`, { method: "PUT", body: JSON.stringify({ models: [{}] }) });
    expect(bad.status).to.equal(400);
  });

  it("answers 404 for unknown control routes", async () => {
    const sim = await start();
    expect((await fetch(`${sim.url}/_sim/nope`)).status).to.equal(404);
  });
});
