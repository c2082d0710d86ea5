import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { openDb } from "./db.js";
import { foreman, stopAll } from "./harness.js";
import { startReceiver } from "./webhook-receiver.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ORDER = ["job.queued", "job.loading", "job.working", "job.done"];

describe("e2e: jobs survive restarts", function () {
  this.timeout(90_000);
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ loadMs: 10, tokensPerSecond: 5000 });
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("webhooks: a receiver that fails (500, then a timeout) at first still gets every event, in order, across a worker restart", async () => {
    // Each job's first event fails twice: a 500, then no answer at all.
    const receiver = await startReceiver(SECRET, (attempt, event) => {
      if (event.type !== "job.queued") return 204;
      return attempt === 1 ? 500 : attempt === 2 ? "hang" : 204;
    });
    const f = await foreman({
      ollamaUrl: sim.url,
      env: {
        FOREMAN_WEBHOOK_SECRET: SECRET,
        FOREMAN_WEBHOOK_RETRY_BASE_MS: "100",
        FOREMAN_WEBHOOK_TIMEOUT_MS: "400",
      },
    });
    try {
      await f.startGateway();
      const first = f.startWorker({}, "worker-1");
      await first.waitForLog("active worker");
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${f.url}/jobs`, {
          method: "POST",
          body: JSON.stringify({ model: "llama3.2", prompt: `hook ${i}`, webhook: { url: receiver.url } }),
        });
        ids.push(((await res.json()) as { id: string }).id);
      }
      // Restart the worker while the first deliveries are failing.
      await first.waitForLog("webhook delivery failed");
      await first.kill("SIGKILL");
      const second = f.startWorker({}, "worker-2");
      await second.waitForLog("active worker");
      await receiver.until(
        () => ids.every((id) => receiver.accepted.some((e) => e.jobId === id && e.type === "job.done")),
        30_000,
      );
      expect(receiver.invalid).to.deep.equal([]);
      // One event per recorded transition, in the order they happened: a job the kill interrupted shows its
      // requeue (queued, loading, queued, loading, working, done), the others the plain four.
      const db = openDb(f.dataDir);
      for (const id of ids) {
        const expected = db.history(id).map((h) => `job.${h.to_state}`);
        expect(expected.slice(0, 2)).to.deep.equal(ORDER.slice(0, 2));
        expect(expected.at(-1)).to.equal("job.done");
        expect(
          receiver.accepted.filter((e) => e.jobId === id).map((e) => e.type),
          id,
        ).to.deep.equal(expected);
      }
      db.close();
      expect(Math.max(...[...receiver.attempts.values()])).to.be.at.least(3);
    } finally {
      await receiver.close();
    }
  });

  it("kill -9 of the gateway while 50 POST /jobs are in flight: every 202 job exists and ends done, none twice", async () => {
    const f = await foreman({ ollamaUrl: sim.url });
    const gateway = await f.startGateway();
    const worker = f.startWorker();
    await worker.waitForLog("active worker");
    let firstAccepted: () => void = () => {};
    const accepted = new Promise<void>((resolve) => {
      firstAccepted = resolve;
    });
    const posts = Array.from({ length: 50 }, (_, n) =>
      fetch(`${f.url}/jobs`, {
        method: "POST",
        body: JSON.stringify({ model: "llama3.2", prompt: `n=${n}`, metadata: { n } }),
      })
        .then(async (res) => {
          const answer = { status: res.status, id: ((await res.json()) as { id: string }).id };
          if (res.status === 202) firstAccepted();
          return answer;
        })
        .catch(() => null),
    );
    // Kill it as soon as one 202 is out, with the other requests in every stage: unsent, unread,
    // committed but unanswered.
    await accepted;
    await gateway.kill("SIGKILL");
    const answered = (await Promise.all(posts)).filter((r): r is { status: number; id: string } => r?.status === 202);
    expect(answered.length).to.be.greaterThan(0);
    await f.startGateway();
    const db = openDb(f.dataDir);
    try {
      for (const { id } of answered) {
        const res = await fetch(`${f.url}/jobs/${id}?wait=20`);
        expect(((await res.json()) as { state: string }).state, id).to.equal("done");
      }
      const all = db.jobs();
      expect(all.length).to.be.at.most(50);
      const ns = all.map((j) => (db.job(j.id) as unknown as { metadata: string }).metadata);
      expect(new Set(ns).size).to.equal(ns.length);
    } finally {
      db.close();
    }
  });
});
