import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { expect } from "chai";
import { Webhook } from "standardwebhooks";
// The outbox store is not exported from @foreman/shared's index yet, so the test builds everything from
// shared's sources: one copy of the store code, the one the dispatcher will run against.
import type { JobState } from "../../shared/src/job-states.js";
import { createLogger } from "../../shared/src/logger.js";
import { createOutboxStore, type OutboxStore } from "../../shared/src/store/outbox.js";
import { openStore, type Store } from "../../shared/src/store/store.js";
import {
  createWebhookDispatcher,
  type WebhookDispatcher,
  type WebhookDispatcherOptions,
  webhookRetryDelay,
} from "../src/webhook-dispatcher.js";

const EVENTS = ["job.queued", "job.loading", "job.working", "job.done"];

const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

/** A clock tests move by hand; it starts at the real time so receivers accept the webhook-timestamp. */
function fakeClock() {
  let t = Date.now();
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

type Reply = number | "hang";

interface Received {
  jobId: string;
  type: string;
  id: string;
  timestamp: string | undefined;
  signature: string | undefined;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** "ok": the signature verified with the job's expected secret; "unsigned": none sent and none expected. */
  verdict: string;
  reply: Reply;
}

/**
 * A real loopback webhook receiver. Every request is checked with the standardwebhooks library against
 * the secret the test expects for that job; `reply` scripts the answers (a status, or "hang" to never
 * answer, so the sender's timeout fires).
 */
async function startReceiver(options: {
  secretFor: (jobId: string) => string | undefined;
  reply?: (request: Omit<Received, "reply">, index: number) => Reply;
  answerDelayMs?: number;
}) {
  const received: Received[] = [];
  const arrivals = new EventEmitter();
  const active = new Map<string, number>();
  let activeTotal = 0;
  const peak = { total: 0, perJob: 0 };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const parsed = JSON.parse(body) as { type: string; data: { id: string } };
      const jobId = parsed.data.id;
      const header = (name: string) => req.headers[name] as string | undefined;
      const secret = options.secretFor(jobId);
      let verdict: string;
      if (secret) {
        try {
          new Webhook(secret).verify(body, {
            "webhook-id": header("webhook-id") ?? "",
            "webhook-timestamp": header("webhook-timestamp") ?? "",
            "webhook-signature": header("webhook-signature") ?? "",
          });
          verdict = "ok";
        } catch (err) {
          verdict = `rejected: ${(err as Error).message}`;
        }
      } else {
        verdict = header("webhook-signature") === undefined ? "unsigned" : "signed without an expected secret";
      }
      const request = {
        jobId,
        type: parsed.type,
        id: header("webhook-id") ?? "",
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        headers: req.headers,
        body,
        verdict,
      };
      const reply = options.reply?.(request, received.length) ?? 200;
      received.push({ ...request, reply });

      active.set(jobId, (active.get(jobId) ?? 0) + 1);
      activeTotal++;
      peak.total = Math.max(peak.total, activeTotal);
      peak.perJob = Math.max(peak.perJob, active.get(jobId)!);
      res.on("close", () => {
        active.set(jobId, active.get(jobId)! - 1);
        activeTotal--;
      });
      arrivals.emit("request");
      if (reply === "hang") return;
      // Answering later keeps several requests open at once, which is what the concurrency checks need.
      setTimeout(
        () => res.writeHead(reply, { "content-type": "text/plain" }).end("thanks"),
        options.answerDelayMs ?? 0,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    peak,
    /** Resolves once `done(received)` holds; rejects with what did arrive after `timeoutMs`. */
    waitFor(what: string, done: (r: Received[]) => boolean, timeoutMs = 5000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!done(received)) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          const got = received.map((r) => `${r.jobId.slice(-4)}:${r.type}:${r.reply}`).join(", ");
          reject(new Error(`timed out waiting for ${what}; received [${got}]`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          arrivals.off("request", check);
        };
        arrivals.on("request", check);
        check();
      });
    },
    close(): Promise<void> {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Every listed event was answered with a 2xx. */
const acknowledged = (ids: string[]) => (r: Received[]) =>
  ids.every((id) => r.some((x) => x.id === id && typeof x.reply === "number" && x.reply < 300));

describe("webhook-dispatcher", function () {
  this.timeout(10_000);
  let cleanups: Array<() => unknown>;
  beforeEach(() => {
    cleanups = [];
  });
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  function tempDbPath(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-webhooks-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    return path.join(dir, "foreman.db");
  }

  function open(dbPath: string, now?: () => number): { store: Store; outbox: OutboxStore } {
    const store = openStore({ dbPath, ...(now ? { now } : {}) });
    cleanups.push(() => store.close());
    return { store, outbox: createOutboxStore(store.db, now ? { now } : {}) };
  }

  async function receiver(options: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
    const r = await startReceiver(options);
    cleanups.push(() => r.close());
    return r;
  }

  /** Captures the logger's JSON lines (debug and up). */
  function captureLogs() {
    const stream = new PassThrough();
    let text = "";
    stream.on("data", (d: Buffer) => {
      text += d.toString();
    });
    const logger = createLogger({ service: "worker", stream, level: "debug" });
    return {
      logger,
      /** Lets the stream hand over what winston has written so far. */
      async lines(): Promise<Array<Record<string, unknown>>> {
        await new Promise((resolve) => setImmediate(resolve));
        return text
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l));
      },
      async text(): Promise<string> {
        await new Promise((resolve) => setImmediate(resolve));
        return text;
      },
    };
  }

  function dispatcher(
    outbox: OutboxStore,
    options: Partial<WebhookDispatcherOptions> & { logger: WebhookDispatcherOptions["logger"] },
  ): WebhookDispatcher {
    const d = createWebhookDispatcher({ store: { outbox }, ...options });
    cleanups.push(() => d.stop());
    return d;
  }

  /** A job that went through queued → loading → working → done: four outbox rows when it has a webhook. */
  function finishedJob(store: Store, webhook: { url: string; secret?: string }) {
    const job = store.transitions.createJob({
      kind: "chat",
      api: "ollama",
      mode: "async",
      model: "m",
      request: {},
      webhook,
    });
    const moves: JobState[] = ["loading", "working", "done"];
    for (const to of moves) {
      store.transitions.transition(
        job.id,
        to,
        to === "loading" ? { incrementAttempts: true } : to === "done" ? { result: { message: "hi" } } : {},
      );
    }
    return job;
  }

  const eventIds = (outbox: OutboxStore, jobId: string) => outbox.deliveriesForJob(jobId).map((d) => d.event_id);

  /** Sends everything deliverable now, one round per call, until a round attempts nothing. */
  async function drain(d: WebhookDispatcher): Promise<number> {
    let total = 0;
    for (let n = await d.runOnce(); n > 0; n = await d.runOnce()) total += n;
    return total;
  }

  it("delivers each job's events in order, signed with the job's secret, with the stored body", async () => {
    const { store, outbox } = open(tempDbPath());
    const secrets = new Map<string, string>();
    const r = await receiver({ secretFor: (id) => secrets.get(id), answerDelayMs: 5 });
    const jobs = [0, 1, 2].map(() => {
      const secret = newSecret();
      const job = finishedJob(store, { url: r.url, secret });
      secrets.set(job.id, secret);
      return job;
    });
    const logs = captureLogs();
    const d = dispatcher(outbox, { logger: logs.logger });
    d.start();
    d.kick();
    const all = jobs.flatMap((j) => eventIds(outbox, j.id));
    await r.waitFor("every event", acknowledged(all));
    await d.stop();

    expect(r.received.map((x) => x.verdict)).to.deep.equal(all.map(() => "ok"));
    expect(r.received).to.have.length(all.length, "each event exactly once");
    for (const job of jobs) {
      const got = r.received.filter((x) => x.jobId === job.id);
      expect(got.map((x) => x.id)).to.deep.equal(eventIds(outbox, job.id));
      expect(got.map((x) => x.type)).to.deep.equal(EVENTS);
      expect(outbox.deliveriesForJob(job.id).map((x) => [x.status, x.attempts, x.last_status])).to.deep.equal(
        EVENTS.map(() => ["delivered", 1, 200]),
      );
    }
    const stored = store.db.prepare<[string], { payload: string }>(
      "SELECT payload FROM webhook_outbox WHERE event_id = ?",
    );
    for (const x of r.received) {
      expect(x.body, "the stored payload bytes, unchanged").to.equal(stored.get(x.id)!.payload);
      expect(x.headers["content-type"]).to.equal("application/json");
      expect(x.headers["user-agent"]).to.equal("foreman-webhooks/1");
      expect(x.signature).to.match(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(Number(x.timestamp)).to.be.closeTo(Date.now() / 1000, 60);
    }
  });

  it("runs different jobs in parallel up to the bound, never two events of one job at once", async () => {
    const { store, outbox } = open(tempDbPath());
    const r = await receiver({ secretFor: () => undefined, answerDelayMs: 25 });
    const jobs = [0, 1, 2, 3, 4].map(() => finishedJob(store, { url: r.url }));
    const d = dispatcher(outbox, { logger: captureLogs().logger, concurrency: 2 });
    d.start();
    await r.waitFor("every event", acknowledged(jobs.flatMap((j) => eventIds(outbox, j.id))));
    await d.stop();
    expect(r.peak.total).to.equal(2);
    expect(r.peak.perJob).to.equal(1);
    for (const job of jobs) {
      expect(r.received.filter((x) => x.jobId === job.id).map((x) => x.type)).to.deep.equal(EVENTS);
    }
  });

  it("signs with the default secret when the job has none, and sends unsigned when no secret is known", async () => {
    const { store, outbox } = open(tempDbPath());
    const defaultSecret = newSecret();
    const expectSigned = new Set<string>();
    const r = await receiver({ secretFor: (id) => (expectSigned.has(id) ? defaultSecret : undefined) });
    const signedJob = finishedJob(store, { url: r.url });
    expectSigned.add(signedJob.id);
    const logger = captureLogs().logger;
    expect(await drain(dispatcher(outbox, { logger, defaultSecret }))).to.equal(4);

    const unsignedJob = finishedJob(store, { url: r.url });
    expect(await drain(dispatcher(outbox, { logger }))).to.equal(4);

    const signed = r.received.filter((x) => x.jobId === signedJob.id);
    const unsigned = r.received.filter((x) => x.jobId === unsignedJob.id);
    expect(signed.map((x) => [x.type, x.verdict])).to.deep.equal(EVENTS.map((t) => [t, "ok"]));
    expect(unsigned.map((x) => [x.type, x.verdict])).to.deep.equal(EVENTS.map((t) => [t, "unsigned"]));
    for (const x of unsigned) {
      expect(x.id).to.match(/^msg_/);
      expect(x.timestamp).to.match(/^\d{10}$/);
    }
  });

  it("retries a 500 and a timeout with backoff, holding the job's later events until the first is delivered", async () => {
    const clock = fakeClock();
    const { store, outbox } = open(tempDbPath(), clock.now);
    const secret = newSecret();
    const r = await receiver({
      secretFor: () => secret,
      reply: (_req, i) => (i === 0 ? 500 : i === 1 ? "hang" : 200),
    });
    const job = finishedJob(store, { url: r.url, secret });
    const logs = captureLogs();
    const d = dispatcher(outbox, {
      logger: logs.logger,
      now: clock.now,
      random: () => 0.5, // jitter factor 0.75
      retryBaseMs: 1000,
      timeoutMs: 200,
    });

    expect(await d.runOnce()).to.equal(1);
    expect(outbox.deliveriesForJob(job.id)[0]).to.include({
      status: "pending",
      attempts: 1,
      last_status: 500,
      last_error: "HTTP 500",
      next_attempt_at: clock.now() + 750,
    });
    expect(await d.runOnce(), "nothing of this job is due during the backoff").to.equal(0);
    clock.advance(749);
    expect(await d.runOnce()).to.equal(0);

    clock.advance(1);
    expect(await d.runOnce()).to.equal(1);
    expect(outbox.deliveriesForJob(job.id)[0]).to.include({
      status: "pending",
      attempts: 2,
      last_status: null,
      last_error: "timed out after 200 ms",
      next_attempt_at: clock.now() + 1500, // 1000 * 2^1 * 0.75
    });

    clock.advance(1500);
    expect(await drain(d)).to.equal(4);
    const ids = eventIds(outbox, job.id);
    expect(r.received.map((x) => [x.id, x.reply])).to.deep.equal([
      [ids[0], 500],
      [ids[0], "hang"],
      [ids[0], 200],
      [ids[1], 200],
      [ids[2], 200],
      [ids[3], 200],
    ]);
    expect(r.received.every((x) => x.verdict === "ok")).to.equal(true);
    expect(
      outbox.deliveriesForJob(job.id).map((x) => [x.status, x.attempts, x.last_status, x.last_error]),
    ).to.deep.equal([
      ["delivered", 3, 200, null],
      ["delivered", 1, 200, null],
      ["delivered", 1, 200, null],
      ["delivered", 1, 200, null],
    ]);
    const failures = (await logs.lines()).filter((l) => l.message === "webhook delivery failed");
    expect(failures.map((l) => [l.level, l.attempt, l.http_status, l.retry_in_ms])).to.deep.equal([
      ["warn", 1, 500, 750],
      ["warn", 2, null, 1500],
    ]);
  });

  it("on its own loop, keeps every job's events in order through 500s and timeouts", async () => {
    const { store, outbox } = open(tempDbPath());
    const r = await receiver({
      secretFor: () => undefined,
      reply: (_req, i) => (i < 2 ? 500 : i === 2 ? "hang" : i === 5 ? 503 : 200),
    });
    const jobs = [0, 1, 2].map(() => finishedJob(store, { url: r.url }));
    const d = dispatcher(outbox, {
      logger: captureLogs().logger,
      retryBaseMs: 10,
      retryMaxDelayMs: 40,
      timeoutMs: 100,
    });
    d.start();
    await r.waitFor("every event", acknowledged(jobs.flatMap((j) => eventIds(outbox, j.id))));
    await d.stop();
    for (const job of jobs) {
      const ids = eventIds(outbox, job.id);
      const got = r.received.filter((x) => x.jobId === job.id);
      // Order means more than the acknowledged sequence: an event is never even sent before the one
      // before it was acknowledged.
      for (const [k, x] of got.entries()) {
        const index = ids.indexOf(x.id);
        const earlierAcked = got.slice(0, k).some((y) => y.id === ids[index - 1] && y.reply === 200);
        expect(index === 0 || earlierAcked, `${x.type} sent before its predecessor was delivered`).to.equal(true);
      }
      expect(outbox.deliveriesForJob(job.id).every((x) => x.status === "delivered")).to.equal(true);
    }
    expect(r.received.filter((x) => x.reply !== 200)).to.have.length(4);
  });

  it("a restarted dispatcher over the same database file carries on with pending deliveries", async () => {
    const clock = fakeClock();
    const dbPath = tempDbPath();
    const first = open(dbPath, clock.now);
    const secret = newSecret();
    let up = false;
    const r = await receiver({ secretFor: () => secret, reply: () => (up ? 200 : 503) });
    const job = finishedJob(first.store, { url: r.url, secret });
    const logger = captureLogs().logger;
    const before = dispatcher(first.outbox, { logger, now: clock.now, random: () => 1 });
    expect(await before.runOnce()).to.equal(1);
    await before.stop();
    first.store.close();

    clock.advance(1000);
    up = true;
    const second = open(dbPath, clock.now);
    const after = dispatcher(second.outbox, { logger, now: clock.now });
    expect(await drain(after)).to.equal(4);
    const ids = eventIds(second.outbox, job.id);
    expect(r.received.map((x) => [x.id, x.reply, x.verdict])).to.deep.equal([
      [ids[0], 503, "ok"],
      ...ids.map((id) => [id, 200, "ok"]),
    ]);
    expect(second.outbox.deliveriesForJob(job.id).map((x) => [x.status, x.attempts])).to.deep.equal([
      ["delivered", 2],
      ["delivered", 1],
      ["delivered", 1],
      ["delivered", 1],
    ]);
  });

  it("stop() aborts a hanging delivery after its grace period and leaves it pending for the next start", async () => {
    const dbPath = tempDbPath();
    const first = open(dbPath);
    let hang = true;
    const r = await receiver({ secretFor: () => undefined, reply: () => (hang ? "hang" : 200) });
    const job = finishedJob(first.store, { url: r.url });
    const before = dispatcher(first.outbox, { logger: captureLogs().logger, timeoutMs: 60_000, stopGraceMs: 50 });
    before.start();
    await r.waitFor("the first attempt", (x) => x.length === 1);
    await before.stop();
    expect(first.outbox.deliveriesForJob(job.id)[0], "an interrupted attempt is not a failure").to.include({
      status: "pending",
      attempts: 0,
      last_error: null,
    });
    first.store.close();

    hang = false;
    const second = open(dbPath);
    expect(await drain(dispatcher(second.outbox, { logger: captureLogs().logger }))).to.equal(4);
    const ids = eventIds(second.outbox, job.id);
    expect(
      r.received.map((x) => x.id),
      "same webhook-id on the resend: receivers can dedupe",
    ).to.deep.equal([ids[0], ...ids]);
  });

  it("gives up after retryForMs, marks the delivery failed and moves on to the job's next event", async () => {
    const clock = fakeClock();
    const { store, outbox } = open(tempDbPath(), clock.now);
    const r = await receiver({ secretFor: () => undefined, reply: (req) => (req.type === "job.queued" ? 500 : 204) });
    const job = finishedJob(store, { url: r.url });
    const logs = captureLogs();
    const d = dispatcher(outbox, { logger: logs.logger, now: clock.now, retryForMs: 60_000 });
    expect(await d.runOnce()).to.equal(1);
    clock.advance(60_000);
    expect(await d.runOnce(), "exactly retryForMs old: still retried").to.equal(1);
    expect(outbox.deliveriesForJob(job.id)[0]).to.include({ status: "pending", attempts: 2 });
    clock.advance(5_000);
    expect(await drain(d)).to.equal(4);
    expect(outbox.deliveriesForJob(job.id).map((x) => [x.type, x.status, x.attempts, x.last_status])).to.deep.equal([
      ["job.queued", "failed", 3, 500],
      ["job.loading", "delivered", 1, 204],
      ["job.working", "delivered", 1, 204],
      ["job.done", "delivered", 1, 204],
    ]);
    expect(outbox.deliveriesForJob(job.id)[0]).to.include({ last_error: "HTTP 500", next_attempt_at: null });
    const givenUp = (await logs.lines()).filter((l) => l.message === "webhook delivery given up");
    expect(givenUp.map((l) => [l.level, l.job_id, l.event, l.attempt, l.http_status])).to.deep.equal([
      ["warn", job.id, "job.queued", 3, 500],
    ]);
  });

  it("gives up at once on a job secret that cannot sign, rather than sending unsigned", async () => {
    const { store, outbox } = open(tempDbPath());
    const r = await receiver({ secretFor: () => undefined });
    const badSecret = "whsec_not*base64*at*all";
    const job = finishedJob(store, { url: r.url, secret: badSecret });
    const logs = captureLogs();
    expect(await drain(dispatcher(outbox, { logger: logs.logger, defaultSecret: newSecret() }))).to.equal(4);
    expect(r.received).to.have.length(0);
    const deliveries = outbox.deliveriesForJob(job.id);
    expect(deliveries.map((x) => [x.status, x.attempts])).to.deep.equal(EVENTS.map(() => ["failed", 1]));
    expect(deliveries[0]!.last_error).to.equal("the job's webhook secret is not a valid whsec_<base64> secret");
    expect(await logs.text()).not.to.include("not*base64");
  });

  it("survives failing outbox reads and delivers once the database answers again", async () => {
    const { store, outbox } = open(tempDbPath());
    const r = await receiver({ secretFor: () => undefined });
    const job = finishedJob(store, { url: r.url });
    let failuresLeft = 2;
    const flaky: OutboxStore = {
      ...outbox,
      dueDeliveries(limit, now) {
        if (failuresLeft-- > 0) throw Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
        return outbox.dueDeliveries(limit, now);
      },
    };
    const logs = captureLogs();
    const d = dispatcher(flaky, { logger: logs.logger, pollIntervalMs: 20 });
    d.start();
    await r.waitFor("every event", acknowledged(eventIds(outbox, job.id)));
    await d.stop();
    const readFailures = (await logs.lines()).filter((l) => l.message === "webhook outbox read failed");
    expect(readFailures.map((l) => [l.level, l.error])).to.deep.equal([
      ["error", "SQLITE_BUSY: database is locked"],
      ["error", "SQLITE_BUSY: database is locked"],
    ]);
  });

  it("logs one line per attempt with job, event, attempt and status, and never a secret or signature", async () => {
    const clock = fakeClock();
    const { store, outbox } = open(tempDbPath(), clock.now);
    const jobSecret = newSecret();
    const defaultSecret = newSecret();
    const secrets = new Map<string, string>();
    const r = await receiver({ secretFor: (id) => secrets.get(id), reply: (_req, i) => (i === 0 ? 500 : 200) });
    const own = finishedJob(store, { url: r.url, secret: jobSecret });
    const fallback = finishedJob(store, { url: r.url });
    secrets.set(own.id, jobSecret).set(fallback.id, defaultSecret);
    const logs = captureLogs();
    const d = dispatcher(outbox, { logger: logs.logger, defaultSecret, now: clock.now, random: () => 0 });
    await drain(d);
    clock.advance(1000);
    await drain(d);
    expect(r.received).to.have.length(9);
    expect(r.received.every((x) => x.verdict === "ok")).to.equal(true);

    const lines = (await logs.lines()).filter((l) => String(l.message).startsWith("webhook"));
    expect(lines).to.have.length(9, "one line per attempt");
    for (const line of lines) {
      expect(line).to.include.keys("job_id", "event", "event_id", "attempt", "http_status");
    }
    expect(lines.filter((l) => l.level === "debug")).to.have.length(8);
    const text = await logs.text();
    for (const secret of [jobSecret, defaultSecret]) {
      expect(text).not.to.include(secret);
      expect(text).not.to.include(secret.slice("whsec_".length));
    }
    for (const x of r.received) expect(text).not.to.include(x.signature!.slice("v1,".length));
  });

  it("backs off exponentially with jitter between half and all of the capped delay", () => {
    const policy = { retryBaseMs: 1000, retryMaxDelayMs: 300_000 };
    expect([0, 1, 2, 3, 8].map((n) => webhookRetryDelay(n, policy, () => 0))).to.deep.equal([
      500, 1000, 2000, 4000, 128_000,
    ]);
    expect([0, 1, 2].map((n) => webhookRetryDelay(n, policy, () => 0.999_999))).to.deep.equal([1000, 2000, 4000]);
    expect(
      webhookRetryDelay(9, policy, () => 0.999_999),
      "capped",
    ).to.equal(300_000);
    expect(
      webhookRetryDelay(10_000, policy, () => 0),
      "no overflow",
    ).to.equal(150_000);
  });
});
