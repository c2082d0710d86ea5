import { expect } from "chai";
import { Webhook } from "standardwebhooks";
import { formatReport, runChaos } from "../chaos/chaos.js";
import { checkJobs, checkWebhooks, type DbFacts, type OutboxRow, type TransitionRow } from "../chaos/checks.js";
import { startFlappingReceiver } from "../chaos/flapping-receiver.js";
import { stopAll } from "./harness.js";

describe("e2e: chaos, small size (pnpm test:chaos --small)", function () {
  this.timeout(180_000);
  afterEach(stopAll);

  it("keeps every guarantee while gateways and worker are killed, the target flaps and the receiver flaps", async () => {
    const report = await runChaos({ jobs: 60, seed: 20261128 });
    const text = formatReport(report);
    expect(report.violations, text).to.deep.equal([]);
    // A run that met no fault proves nothing: each kind happened at least once.
    expect(report.kills.worker, text).to.be.greaterThan(0);
    expect(report.kills["gateway-a"] + report.kills["gateway-b"], text).to.be.greaterThan(0);
    expect(report.faults.targetRefusals, text).to.be.greaterThan(0);
    expect(report.faults.targetDieMidStream, text).to.be.greaterThan(0);
    expect(
      Object.values(report.faults.receiverFlaps).reduce((a, b) => a + b, 0),
      text,
    ).to.be.greaterThan(0);
    expect(report.accepted.sync, text).to.be.greaterThan(0);
    expect(report.accepted.async, text).to.be.greaterThan(0);
    expect(report.webhooks.events, text).to.be.greaterThan(report.accepted.async);
  });
});

const job = (id: string, state: string, webhook = false) => ({
  id,
  state,
  mode: "async",
  model: "llama3.2:latest",
  attempts: 1,
  error: null,
  webhook_url: webhook ? "http://127.0.0.1:1/hook/default" : null,
  webhook_events: null,
});
const moves = (id: string, ...states: string[]): TransitionRow[] =>
  states.map((to, i) => ({
    job_id: id,
    from_state: i === 0 ? null : states[i - 1]!,
    to_state: to,
    attempt: 1,
    reason: null,
  }));

describe("chaos checks: each broken guarantee is reported", () => {
  it("a job that never ended, an illegal move, a second ending, a row that disagrees, a lost accepted job", () => {
    const facts: DbFacts = {
      jobs: [job("A", "done"), job("B", "working"), job("C", "done"), job("D", "failed"), job("E", "done")],
      history: new Map([
        ["A", moves("A", "queued", "loading", "working", "done")],
        ["B", moves("B", "queued", "loading", "working")],
        ["C", moves("C", "queued", "working", "done")],
        ["D", moves("D", "queued", "loading", "failed", "queued", "loading", "failed")],
        ["E", moves("E", "queued", "loading", "working", "failed")],
      ]),
      outbox: new Map(),
    };
    const violations = checkJobs(facts, new Set(["A", "Z"]));
    expect(violations.some((v) => v.includes("job B") && v.includes("did not reach a terminal state"))).to.equal(true);
    expect(violations.some((v) => v.includes("job C") && v.includes("illegal transition queued→working"))).to.equal(
      true,
    );
    expect(violations.some((v) => v.includes("job D") && v.includes("entered a terminal state 2 times"))).to.equal(
      true,
    );
    expect(violations.some((v) => v.includes("job E") && v.includes("the row says done"))).to.equal(true);
    expect(violations.some((v) => v.includes("job Z was accepted but is not in the database"))).to.equal(true);
    expect(violations.some((v) => v.includes("job A"))).to.equal(false);
  });

  it("an event missing from the outbox, one never received, one received out of order, a bad signature", () => {
    const row = (jobId: string, n: number, type: string): OutboxRow => ({
      job_id: jobId,
      event_id: `msg_${jobId}${n}`,
      event_type: type,
      status: "delivered",
      attempts: 1,
      last_error: null,
    });
    const facts: DbFacts = {
      jobs: [job("A", "done", true), job("B", "done", true), job("C", "done", true)],
      history: new Map([
        ["A", moves("A", "queued", "loading", "working", "done")],
        ["B", moves("B", "queued", "loading", "working", "done")],
        ["C", moves("C", "queued", "loading", "working", "done")],
      ]),
      outbox: new Map([
        [
          "A",
          [row("A", 1, "job.queued"), row("A", 2, "job.loading"), row("A", 3, "job.working"), row("A", 4, "job.done")],
        ],
        ["B", [row("B", 1, "job.queued"), row("B", 2, "job.loading"), row("B", 3, "job.done")]],
        [
          "C",
          [row("C", 1, "job.queued"), row("C", 2, "job.loading"), row("C", 3, "job.working"), row("C", 4, "job.done")],
        ],
      ]),
    };
    const accepted = new Map<string, { eventId: string; jobId: string; type: string; state: string; seq: number }>();
    const acceptedByJob = new Map<string, string[]>();
    const receive = (r: OutboxRow) => {
      accepted.set(r.event_id, {
        eventId: r.event_id,
        jobId: r.job_id,
        type: r.event_type,
        state: r.event_type.slice(4),
        seq: accepted.size,
      });
      acceptedByJob.set(r.job_id, [...(acceptedByJob.get(r.job_id) ?? []), r.event_id]);
    };
    const a = facts.outbox.get("A")!;
    const b = facts.outbox.get("B")!;
    const c = facts.outbox.get("C")!;
    for (const r of [a[0]!, a[1]!, a[2]!, a[3]!, ...b, c[0]!, c[2]!, c[1]!]) receive(r);
    const violations = checkWebhooks(facts, {
      accepted,
      acceptedByJob,
      invalid: [{ path: "/hook/job", error: "No matching signature found", eventId: "msg_X" }],
    });
    expect(violations.some((v) => v.startsWith("job A"))).to.equal(false);
    expect(violations.some((v) => v.includes("job B: outbox events [job.queued,job.loading,job.done]"))).to.equal(true);
    expect(violations.some((v) => v.includes("job C: event msg_C4 (job.done) never reached the receiver"))).to.equal(
      true,
    );
    expect(violations.some((v) => v.includes("job C: events first received out of order"))).to.equal(true);
    expect(violations.some((v) => v.includes("failed verification: No matching signature found"))).to.equal(true);
  });

  it("the receiver verifies real deliveries: a wrong secret is recorded, a good one accepted, a closed port refused", async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const receiver = await startFlappingReceiver({
      default: secret,
      job: `whsec_${Buffer.alloc(32, 8).toString("base64")}`,
    });
    try {
      const send = (url: string, signWith: string, id: string) => {
        const payload = JSON.stringify({
          type: "job.done",
          timestamp: new Date().toISOString(),
          data: { id: "J", state: "done" },
        });
        const now = new Date();
        return fetch(url, {
          method: "POST",
          body: payload,
          headers: {
            "webhook-id": id,
            "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
            "webhook-signature": new Webhook(signWith).sign(id, now, payload),
          },
        });
      };
      expect((await send(receiver.urls.job, secret, "msg_1")).status).to.equal(400);
      expect(receiver.invalid).to.have.length(1);
      expect((await send(receiver.urls.default, secret, "msg_2")).status).to.equal(204);
      expect(receiver.acceptedByJob.get("J")).to.deep.equal(["msg_2"]);
      expect(await receiver.flap("refuse", 60_000)).to.equal(true);
      const refused = await send(receiver.urls.default, secret, "msg_3").catch((err: Error) => err);
      expect(refused).to.be.instanceOf(Error);
      await receiver.heal();
      expect((await send(receiver.urls.default, secret, "msg_3")).status).to.equal(204);
    } finally {
      await receiver.close();
    }
  });
});
