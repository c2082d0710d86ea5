import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
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
const LOOPBACK = ["127.0.0.1", "::1"];

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

/** A status, a status with headers, or "hang" to never answer. */
type Reply = number | "hang" | { status: number; headers: Record<string, string> };

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
  /** The TLS server name (SNI) the sender asked for, on an HTTPS receiver. */
  servername: string | undefined;
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
  /** A loopback address to listen on (127.0.0.1 by default) and a port (any free one by default). */
  host?: string;
  port?: number;
  /** Serve HTTPS with this key and certificate. */
  tls?: { key: Buffer; cert: Buffer };
}) {
  const received: Received[] = [];
  const arrivals = new EventEmitter();
  const active = new Map<string, number>();
  let activeTotal = 0;
  const peak = { total: 0, perJob: 0 };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
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
        servername: (req.socket as { servername?: string }).servername,
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
      const [status, headers] = typeof reply === "number" ? [reply, {}] : [reply.status, reply.headers];
      // Answering later keeps several requests open at once, which is what the concurrency checks need.
      setTimeout(
        () => res.writeHead(status, { "content-type": "text/plain", ...headers }).end("thanks"),
        options.answerDelayMs ?? 0,
      );
    });
  };
  const server = options.tls ? https.createServer(options.tls, handle) : http.createServer(handle);
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `${options.tls ? "https" : "http"}://${host}:${port}/hook`,
    port,
    received,
    peak,
    /** Requests open right now (received, not yet answered or dropped). */
    active: () => activeTotal,
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
    // The receivers are on loopback, which deliveries refuse unless the operator allows it.
    const d = createWebhookDispatcher({ store: { outbox }, allowedHosts: LOOPBACK, ...options });
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

  describe("where deliveries may go", () => {
    /** A resolver that answers every name with these addresses, counting its calls. */
    function resolver(answer: (call: number, name: string) => string[]) {
      const calls: string[] = [];
      const resolve = async (name: string) => {
        calls.push(name);
        return answer(calls.length, name).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
      };
      return { resolve, calls };
    }

    it("refuses a name that resolves to loopback unless the operator allows it, by address or by name", async () => {
      const { store, outbox } = open(tempDbPath());
      const r = await receiver({ secretFor: () => undefined });
      const dns = resolver(() => ["127.0.0.1"]);
      const url = `http://hooks.test:${r.port}/hook`;
      const logger = captureLogs().logger;

      const refusedJob = finishedJob(store, { url });
      expect(await drain(dispatcher(outbox, { logger, allowedHosts: [], resolve: dns.resolve }))).to.equal(4);
      expect(r.received, "nothing reaches the receiver").to.have.length(0);
      expect(outbox.deliveriesForJob(refusedJob.id).map((d) => [d.status, d.attempts, d.last_error])).to.deep.equal(
        EVENTS.map(() => [
          "failed",
          1,
          "refused: hooks.test resolves only to non-public addresses (loopback); FOREMAN_WEBHOOK_ALLOWED_HOSTS can allow it",
        ]),
      );

      const byAddress = finishedJob(store, { url });
      expect(await drain(dispatcher(outbox, { logger, allowedHosts: ["127.0.0.0/8"], resolve: dns.resolve }))).to.equal(
        4,
      );
      const byName = finishedJob(store, { url });
      expect(await drain(dispatcher(outbox, { logger, allowedHosts: ["*.test"], resolve: dns.resolve }))).to.equal(4);
      for (const job of [byAddress, byName]) {
        expect(r.received.filter((x) => x.jobId === job.id).map((x) => x.type)).to.deep.equal(EVENTS);
        expect(outbox.deliveriesForJob(job.id).every((d) => d.status === "delivered")).to.equal(true);
      }
    });

    it("refuses localhost through the system resolver", async () => {
      const { store, outbox } = open(tempDbPath());
      const r = await receiver({ secretFor: () => undefined });
      const job = finishedJob(store, { url: `http://localhost:${r.port}/hook` });
      expect(await drain(dispatcher(outbox, { logger: captureLogs().logger, allowedHosts: [] }))).to.equal(4);
      expect(r.received).to.have.length(0);
      expect(outbox.deliveriesForJob(job.id)[0]!.last_error).to.match(
        /^refused: localhost resolves only to non-public addresses \(loopback/,
      );
    });

    it("reads odd IPv4 and IPv6 spellings as the address they are, refused or delivered alike", async () => {
      const { store, outbox } = open(tempDbPath());
      const r = await receiver({ secretFor: () => undefined });
      const hosts = ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"];
      const refused = hosts.map((h) => finishedJob(store, { url: `http://${h}:${r.port}/hook` }));
      expect(await drain(dispatcher(outbox, { logger: captureLogs().logger, allowedHosts: [] }))).to.equal(24);
      expect(r.received).to.have.length(0);
      expect(refused.map((job) => outbox.deliveriesForJob(job.id)[0]!.last_error)).to.deep.equal([
        ...hosts
          .slice(0, 4)
          .map(
            () => "refused: 127.0.0.1 is not a public address (loopback); FOREMAN_WEBHOOK_ALLOWED_HOSTS can allow it",
          ),
        ...hosts
          .slice(4)
          .map(
            () =>
              "refused: ::ffff:7f00:1 is not a public address (loopback, IPv4-mapped); FOREMAN_WEBHOOK_ALLOWED_HOSTS can allow it",
          ),
      ]);

      const allowed = hosts.map((h) => finishedJob(store, { url: `http://${h}:${r.port}/hook` }));
      expect(await drain(dispatcher(outbox, { logger: captureLogs().logger, allowedHosts: ["127.0.0.1"] }))).to.equal(
        24,
      );
      for (const job of allowed) {
        expect(
          outbox.deliveriesForJob(job.id).map((d) => d.status),
          job.webhook!.url,
        ).to.deep.equal(EVENTS.map(() => "delivered"));
      }
    });

    it("connects to the address it checked: a DNS answer that changes afterwards is never used", async () => {
      const { store, outbox } = open(tempDbPath());
      // The receiver the first answer allows, and an "internal" service on the same port of another
      // loopback address that the later answers point at.
      const allowed = await receiver({ secretFor: () => undefined });
      const internal = await receiver({ secretFor: () => undefined, host: "127.0.0.2", port: allowed.port });
      const dns = resolver((call) => (call === 1 ? ["127.0.0.1"] : ["127.0.0.2"]));
      const job = finishedJob(store, { url: `http://rebind.test:${allowed.port}/hook` });
      const d = dispatcher(outbox, { logger: captureLogs().logger, allowedHosts: ["127.0.0.1"], resolve: dns.resolve });

      expect(await d.runOnce()).to.equal(1);
      expect(dns.calls, "one resolution for the check and the connect").to.deep.equal(["rebind.test"]);
      expect(allowed.received.map((x) => x.type)).to.deep.equal(["job.queued"]);
      expect(internal.received).to.have.length(0);

      expect(await drain(d)).to.equal(3);
      expect(dns.calls).to.have.length(4, "one resolution per delivery");
      expect(internal.received, "the rebound answer is refused, never connected to").to.have.length(0);
      expect(outbox.deliveriesForJob(job.id).map((x) => [x.status, x.last_error])).to.deep.equal([
        ["delivered", null],
        ...EVENTS.slice(1).map(() => [
          "failed",
          "refused: rebind.test resolves only to non-public addresses (loopback); FOREMAN_WEBHOOK_ALLOWED_HOSTS can allow it",
        ]),
      ]);
    });

    it("connects only to the allowed addresses among several answers", async () => {
      const { store, outbox } = open(tempDbPath());
      const r = await receiver({ secretFor: () => undefined });
      const other = await receiver({ secretFor: () => undefined, host: "127.0.0.2", port: r.port });
      const dns = resolver(() => ["127.0.0.2", "127.0.0.1"]);
      const job = finishedJob(store, { url: `http://mixed.test:${r.port}/hook` });
      expect(
        await drain(
          dispatcher(outbox, { logger: captureLogs().logger, allowedHosts: ["127.0.0.1"], resolve: dns.resolve }),
        ),
      ).to.equal(4);
      expect(r.received.filter((x) => x.jobId === job.id).map((x) => x.type)).to.deep.equal(EVENTS);
      expect(other.received).to.have.length(0);
    });

    it("verifies TLS against the URL's host name, not the address it connects to", async () => {
      const fixtures = path.join(import.meta.dirname, "fixtures");
      const tls = {
        key: fs.readFileSync(path.join(fixtures, "hooks-test.key")),
        cert: fs.readFileSync(path.join(fixtures, "hooks-test.crt")),
      };
      const { store, outbox } = open(tempDbPath());
      const r = await receiver({ secretFor: () => undefined, tls });
      const dns = resolver(() => ["127.0.0.1"]);
      const good = finishedJob(store, { url: `https://hooks.test:${r.port}/hook` });
      const wrongName = finishedJob(store, { url: `https://other.test:${r.port}/hook` });
      const d = dispatcher(outbox, { logger: captureLogs().logger, resolve: dns.resolve, ca: tls.cert });
      await drain(d);
      expect(r.received.filter((x) => x.jobId === good.id).map((x) => [x.type, x.servername])).to.deep.equal(
        EVENTS.map((t) => [t, "hooks.test"]),
      );
      expect(r.received.filter((x) => x.jobId === wrongName.id)).to.have.length(0);
      expect(outbox.deliveriesForJob(wrongName.id)[0]).to.include({ status: "pending", attempts: 1 });
      expect(outbox.deliveriesForJob(wrongName.id)[0]!.last_error).to.match(/ERR_TLS_CERT_ALTNAME_INVALID/);
    });
  });

  describe("one receiver does not hold up the others", () => {
    it("delivers to a healthy receiver while 40 jobs' deliveries hang at another", async () => {
      const { store, outbox } = open(tempDbPath());
      const hanging = await receiver({ secretFor: () => undefined, reply: () => "hang" });
      const healthy = await receiver({ secretFor: () => undefined });
      for (let i = 0; i < 40; i++) finishedJob(store, { url: hanging.url });
      const job = finishedJob(store, { url: healthy.url });
      const d = dispatcher(outbox, { logger: captureLogs().logger, timeoutMs: 60_000, stopGraceMs: 50 });
      d.start();
      await healthy.waitFor("the healthy job's events", acknowledged(eventIds(outbox, job.id)));
      expect(hanging.active(), "the hanging deliveries are still in flight").to.equal(2);
      expect(hanging.received, "at most two at a time to one receiver").to.have.length(2);
      await d.stop();
    });

    it("serves receivers whose last attempt failed from a lane of their own", async () => {
      const { store, outbox } = open(tempDbPath());
      // Two receivers fail once, then hang; with two slots in all, only their own lane keeps the third going.
      const receivers = await Promise.all(
        [0, 1].map(() => receiver({ secretFor: () => undefined, reply: (_req, i) => (i === 0 ? 500 : "hang") })),
      );
      for (const r of receivers) finishedJob(store, { url: r.url });
      const d = dispatcher(outbox, {
        logger: captureLogs().logger,
        concurrency: 2,
        endpointConcurrency: 1,
        retryBaseMs: 1,
        timeoutMs: 60_000,
        stopGraceMs: 50,
      });
      d.start();
      for (const r of receivers) await r.waitFor("a failure, then a hanging retry", (x) => x.length === 2);
      const healthy = await receiver({ secretFor: () => undefined });
      const job = finishedJob(store, { url: healthy.url });
      d.kick();
      await healthy.waitFor("the healthy job's events", acknowledged(eventIds(outbox, job.id)));
      expect(receivers.map((r) => r.active())).to.deep.equal([1, 1]);
      await d.stop();
    });

    it("honours Retry-After (seconds or a date) on 429 and 503, for the whole receiver, capped by the longest delay", async () => {
      const clock = fakeClock();
      const { store, outbox } = open(tempDbPath(), clock.now);
      // The first job's attempts get these answers, in turn; everything else is answered 200.
      const answers: Array<() => Reply> = [
        () => ({ status: 503, headers: { "retry-after": "120" } }),
        () => ({ status: 429, headers: { "retry-after": new Date(clock.now() + 30_000).toUTCString() } }),
        () => ({ status: 503, headers: { "retry-after": "86400" } }),
        () => ({ status: 500, headers: { "retry-after": "600" } }),
      ];
      let answered = 0;
      let job: { id: string } | undefined;
      const r = await receiver({
        secretFor: () => undefined,
        reply: (req) => (req.jobId === job?.id ? (answers[answered++]?.() ?? 200) : 200),
      });
      job = finishedJob(store, { url: r.url });
      const logs = captureLogs();
      const d = dispatcher(outbox, { logger: logs.logger, now: clock.now, random: () => 0.5, endpointConcurrency: 1 });
      const head = () => outbox.deliveriesForJob(job!.id)[0]!;

      expect(await d.runOnce()).to.equal(1);
      expect(head()).to.include({ last_status: 503, next_attempt_at: clock.now() + 120_000 });
      const other = finishedJob(store, { url: r.url });
      expect(await d.runOnce(), "the receiver is paused: another job's delivery waits too").to.equal(0);
      clock.advance(119_999);
      expect(await d.runOnce()).to.equal(0);
      expect(outbox.deliveriesForJob(other.id)[0]).to.include({ attempts: 0 });
      clock.advance(1);
      expect(await drain(d)).to.equal(5);
      expect(outbox.deliveriesForJob(other.id).every((x) => x.status === "delivered")).to.equal(true);
      expect(head()).to.include({ last_status: 429 });
      const dated = head().next_attempt_at! - clock.now();
      expect(dated).to.be.within(29_000, 30_000);

      clock.advance(dated);
      expect(await d.runOnce()).to.equal(1);
      expect(head().next_attempt_at! - clock.now(), "capped by the longest delay").to.equal(300_000);
      clock.advance(300_000);
      expect(await d.runOnce()).to.equal(1);
      expect(head().next_attempt_at! - clock.now(), "ignored on a 500: the backoff").to.equal(6000);
      const failed = (await logs.lines()).filter((l) => l.message === "webhook delivery failed");
      expect(failed.map((l) => [l.http_status, l.retry_after_ms])).to.deep.equal([
        [503, 120_000],
        [429, dated],
        [503, 86_400_000],
        [500, undefined],
      ]);
    });
  });

  describe("disabling an endpoint", () => {
    it("a 410 disables the endpoint at once: its pending deliveries fail, one log line, a trial after the period", async () => {
      const clock = fakeClock();
      const { store, outbox } = open(tempDbPath(), clock.now);
      let gone = true;
      const r = await receiver({ secretFor: () => undefined, reply: () => (gone ? 410 : 200) });
      const url = r.url.replace("http://", "http://alice:pa55word@");
      const first = finishedJob(store, { url });
      const second = finishedJob(store, { url });
      const elsewhere = finishedJob(store, { url: `${r.url}-other` });
      const logs = captureLogs();
      const d = dispatcher(outbox, {
        logger: logs.logger,
        now: clock.now,
        endpointConcurrency: 1,
        disabledForMs: 3_600_000,
      });

      expect(await d.runOnce()).to.equal(1);
      const disabledAt = new Date(clock.now()).toISOString();
      const error = `endpoint disabled since ${disabledAt}: it answered 410 Gone`;
      expect(
        outbox.deliveriesForJob(first.id).map((x) => [x.status, x.attempts, x.last_status, x.last_error]),
      ).to.deep.equal([["failed", 1, 410, error], ...EVENTS.slice(1).map(() => ["failed", 0, null, error])]);
      expect(outbox.deliveriesForJob(second.id).map((x) => [x.status, x.attempts, x.last_error])).to.deep.equal(
        EVENTS.map(() => ["failed", 0, error]),
      );
      const lines = (await logs.lines()).filter((l) => l.message === "webhook endpoint disabled");
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({
        level: "warn",
        endpoint: r.url,
        reason: "it answered 410 Gone",
        http_status: 410,
        deliveries_failed: 8,
      });

      // The other path of the same receiver is another endpoint.
      gone = false;
      expect(await drain(d)).to.equal(4);
      expect(outbox.deliveriesForJob(elsewhere.id).every((x) => x.status === "delivered")).to.equal(true);

      // A job after the disabling: failed without an attempt while the endpoint is disabled.
      const later = finishedJob(store, { url });
      await drain(d);
      expect(outbox.deliveriesForJob(later.id).map((x) => [x.status, x.attempts, x.last_error])).to.deep.equal(
        EVENTS.map(() => ["failed", 0, error]),
      );
      expect(r.received.filter((x) => x.reply === 410)).to.have.length(1);

      // After the period, a trial: it succeeds, and the endpoint is enabled again.
      clock.advance(3_600_000);
      const trial = finishedJob(store, { url });
      await drain(d);
      expect(outbox.deliveriesForJob(trial.id).map((x) => x.status)).to.deep.equal(EVENTS.map(() => "delivered"));
      expect(outbox.endpointHealth(r.url)).to.equal(null);
      const text = await logs.text();
      expect(text).not.to.include("pa55word");
      expect(text).not.to.include("alice");
    });

    it("disables an endpoint whose every attempt failed for the configured period", async () => {
      const clock = fakeClock();
      const { store, outbox } = open(tempDbPath(), clock.now);
      const r = await receiver({ secretFor: () => undefined, reply: () => 500 });
      const job = finishedJob(store, { url: r.url });
      const logs = captureLogs();
      const d = dispatcher(outbox, {
        logger: logs.logger,
        now: clock.now,
        random: () => 0,
        retryMaxDelayMs: 10_000,
        retryForMs: 86_400_000,
        disableAfterMs: 60_000,
      });
      const started = clock.now();
      let attempts = 0;
      while (outbox.deliveriesForJob(job.id)[0]!.status === "pending") {
        expect(await d.runOnce()).to.equal(1);
        attempts++;
        const next = outbox.deliveriesForJob(job.id)[0]!.next_attempt_at;
        if (next !== null) clock.advance(next - clock.now());
      }
      // Delays 500, 1000, 2000, 4000, then 5000 each: the 16th attempt, at 62.5 s, is the first 60 s after the first.
      expect(attempts).to.equal(16);
      expect(clock.now() - started).to.be.at.least(60_000);
      expect(outbox.deliveriesForJob(job.id).map((x) => x.status)).to.deep.equal(EVENTS.map(() => "failed"));
      const [line] = (await logs.lines()).filter((l) => l.message === "webhook endpoint disabled");
      expect(line?.reason).to.equal("every attempt failed for 1 min (16 attempts, last: HTTP 500)");
    });
  });

  it("never logs the webhook URL's user or password, and sends them as Basic auth", async () => {
    const clock = fakeClock();
    const { store, outbox } = open(tempDbPath(), clock.now);
    const r = await receiver({ secretFor: () => undefined, reply: (_req, i) => (i === 0 ? 500 : 200) });
    const closed = await receiver({ secretFor: () => undefined });
    await closed.close();
    const withCredentials = (url: string) => url.replace("http://", "http://hook-user:s3cret%21pw@");
    const job = finishedJob(store, { url: withCredentials(r.url) });
    const refused = finishedJob(store, { url: withCredentials(closed.url) });
    const logs = captureLogs();
    const d = dispatcher(outbox, { logger: logs.logger, now: clock.now });
    expect(await d.runOnce()).to.equal(2);
    clock.advance(1000);
    await drain(d);
    expect(r.received.map((x) => x.headers.authorization)).to.deep.equal(
      [0, 1, 2, 3, 4].map(() => `Basic ${Buffer.from("hook-user:s3cret!pw").toString("base64")}`),
    );
    expect(outbox.deliveriesForJob(job.id).every((x) => x.status === "delivered")).to.equal(true);
    expect(outbox.deliveriesForJob(refused.id)[0]!.last_error).to.match(/^connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    const lines = await logs.lines();
    expect(lines.filter((l) => l.message === "webhook delivery failed")).to.have.length.at.least(2);
    const text = await logs.text();
    for (const secret of ["s3cret", "hook-user"]) expect(text).not.to.include(secret);
  });

  it("sends a user name that is not valid percent-encoding as written", async () => {
    const { store, outbox } = open(tempDbPath());
    const r = await receiver({ secretFor: () => undefined });
    const job = finishedJob(store, { url: r.url.replace("http://", "http://odd%zzuser:pw@") });
    expect(await drain(dispatcher(outbox, { logger: captureLogs().logger }))).to.equal(4);
    expect(outbox.deliveriesForJob(job.id).every((x) => x.status === "delivered")).to.equal(true);
    expect(r.received[0]!.headers.authorization).to.equal(`Basic ${Buffer.from("odd%zzuser:pw").toString("base64")}`);
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
