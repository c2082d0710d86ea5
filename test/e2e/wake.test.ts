import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

/**
 * The gateway wakes the worker when it commits a job: with the worker's fallback poll set to a day, every
 * job here can only start through that wake-up, so a broken one fails the test by its timeout.
 */
describe("e2e: the worker starts a committed job on the gateway's wake-up, not its poll", function () {
  this.timeout(20_000);
  let sim: Simulator;
  let f: Foreman;

  before(async () => {
    sim = await startSimulator({ loadMs: 0, tokensPerSecond: 1000 });
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_QUEUE_POLL_MS: "86400000" } });
    await f.startGateway();
    // Once the target is up, the worker has made its own start-up claims: nothing but a wake-up claims again.
    await f.startWorker().waitForLog("target up");
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("answers one synchronous chat after another, each started by its own wake-up", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${f.url}/api/chat`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: `hi ${i}` }] }),
      });
      expect(res.status).to.equal(200);
      const lines = (await res.text()).trimEnd().split("\n");
      expect(JSON.parse(lines.at(-1)!)).to.include({ done: true });
    }
  });

  it("starts an asynchronous job committed while the worker is idle", async () => {
    const res = await fetch(`${f.url}/jobs`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.status).to.equal(202);
    const { id } = (await res.json()) as { id: string };
    expect((await f.endedJob(id)).state).to.equal("done");
  });
});
