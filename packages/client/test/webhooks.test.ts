import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import express from "express";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import {
  type VerifiedWebhookRequest,
  verifyWebhook,
  type WebhookEvent,
  WebhookVerificationError,
  webhookMiddleware,
  webhookReader,
} from "../src/webhooks.js";

const SECRET = `whsec_${Buffer.from("foreman-test-secret-of-32-bytes!").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("another-secret-of-thirty-two-b!!").toString("base64")}`;
const NOW_MS = 1_750_000_000_000;
const NOW = NOW_MS / 1000;
const clock = { now: () => NOW_MS };

const EVENT = {
  type: "job.done",
  timestamp: "2025-06-15T15:06:40.000Z",
  data: { id: "01JXXXXXXXXXXXXXXXXXXXXXXX", kind: "chat", model: "llama3.2", state: "done", metadata: { n: 1 } },
};
const BODY = JSON.stringify(EVENT);

/** The headers foreman's worker sends, made here by the reference library. */
function signed(body: string, options: { secret?: string; id?: string; timestamp?: number } = {}) {
  const id = options.id ?? "msg_01JXYZ";
  const timestamp = options.timestamp ?? NOW;
  const signature = new Webhook(options.secret ?? SECRET).sign(id, new Date(timestamp * 1000), body);
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

async function failure(promise: Promise<unknown>): Promise<WebhookVerificationError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(WebhookVerificationError);
  return error as WebhookVerificationError;
}

describe("webhooks: verifyWebhook", () => {
  it("returns the event of a genuine delivery, from a string, bytes or Headers", async () => {
    const headers = signed(BODY);
    expect(await verifyWebhook(SECRET, headers, BODY, clock)).to.deep.equal(EVENT);
    expect(await verifyWebhook(SECRET, headers, Buffer.from(BODY), clock)).to.deep.equal(EVENT);
    const fetchHeaders = new Headers(headers);
    const bytes = new TextEncoder().encode(BODY);
    expect(await verifyWebhook(SECRET, fetchHeaders, bytes.buffer as ArrayBuffer, clock)).to.deep.equal(EVENT);
    const upper = { "Webhook-Id": headers["webhook-id"], "WEBHOOK-TIMESTAMP": headers["webhook-timestamp"] };
    expect(
      await verifyWebhook(SECRET, { ...upper, "Webhook-Signature": headers["webhook-signature"] }, BODY, clock),
    ).to.deep.equal(EVENT);
  });

  it("rejects a tampered body, a wrong secret, an old or future timestamp and missing headers", async () => {
    const headers = signed(BODY);
    const tampered = BODY.replace('"done"', '"fail"');
    expect((await failure(verifyWebhook(SECRET, headers, tampered, clock))).reason).to.equal("no-matching-signature");
    expect((await failure(verifyWebhook(OTHER_SECRET, headers, BODY, clock))).reason).to.equal("no-matching-signature");
    const old = signed(BODY, { timestamp: NOW - 301 });
    expect((await failure(verifyWebhook(SECRET, old, BODY, clock))).reason).to.equal("timestamp-too-old");
    expect(await verifyWebhook(SECRET, signed(BODY, { timestamp: NOW - 300 }), BODY, clock)).to.deep.equal(EVENT);
    const future = signed(BODY, { timestamp: NOW + 301 });
    expect((await failure(verifyWebhook(SECRET, future, BODY, clock))).reason).to.equal("timestamp-too-new");
    const { "webhook-signature": _gone, ...unsigned } = headers;
    expect((await failure(verifyWebhook(SECRET, unsigned, BODY, clock))).reason).to.equal("missing-headers");
    const replayedId = { ...headers, "webhook-id": "msg_other" };
    expect((await failure(verifyWebhook(SECRET, replayedId, BODY, clock))).status).to.equal(400);
  });

  it("accepts any matching v1 signature among several, and ignores other versions", async () => {
    const headers = signed(BODY);
    const good = headers["webhook-signature"];
    const wrong = signed(BODY, { secret: OTHER_SECRET })["webhook-signature"];
    const rotated = { ...headers, "webhook-signature": `${wrong} v2,${good.slice(3)} ${good}` };
    expect(await verifyWebhook(SECRET, rotated, BODY, clock)).to.deep.equal(EVENT);
    const onlyOthers = { ...headers, "webhook-signature": `${wrong} v2,${good.slice(3)}` };
    expect((await failure(verifyWebhook(SECRET, onlyOthers, BODY, clock))).reason).to.equal("no-matching-signature");
  });

  it("refuses a secret that is not base64 with a TypeError that does not quote it", async () => {
    const error = await verifyWebhook("whsec_not base64!!", signed(BODY), BODY, clock).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TypeError);
    expect((error as Error).message).to.not.include("not base64!!");
  });

  it("a signed body that is not a foreman event is refused as bad-body", async () => {
    const body = "[1,2,3]";
    expect((await failure(verifyWebhook(SECRET, signed(body), body, clock))).reason).to.equal("bad-body");
  });

  it("agrees with the standardwebhooks library on the same inputs", async function () {
    this.timeout(60_000);
    const secretArb = fc
      .uint8Array({ minLength: 24, maxLength: 64 })
      .map((b) => `whsec_${Buffer.from(b).toString("base64")}`);
    const bodyArb = fc
      .record({
        type: fc.constantFrom("job.queued", "job.done"),
        text: fc.string({ unit: "grapheme" }),
        n: fc.integer(),
      })
      .map(({ type, text, n }) => JSON.stringify({ type, timestamp: "2025-01-01T00:00:00Z", data: { id: text, n } }));
    const mutation = fc.constantFrom("none", "body", "secret", "timestamp", "id", "signature");
    await fc.assert(
      fc.asyncProperty(
        secretArb,
        secretArb,
        fc.stringMatching(/^msg_[A-Za-z0-9]{1,30}$/),
        // Clear of the tolerance's edges, where the two libraries read the clock a moment apart.
        fc.oneof(
          fc.integer({ min: -400, max: -302 }),
          fc.integer({ min: -298, max: 298 }),
          fc.integer({ min: 302, max: 400 }),
        ),
        bodyArb,
        mutation,
        async (secret, otherSecret, id, skew, body, mutate) => {
          const headers = signed(body, { secret, id, timestamp: Math.floor(Date.now() / 1000) + skew });
          let receivedBody = body;
          let receiverSecret = secret;
          if (mutate === "body") receivedBody = `${body} `;
          if (mutate === "secret") receiverSecret = otherSecret;
          if (mutate === "timestamp") headers["webhook-timestamp"] = String(Number(headers["webhook-timestamp"]) + 1);
          if (mutate === "id") headers["webhook-id"] = `${id}x`;
          if (mutate === "signature") headers["webhook-signature"] = `v1,${randomBytes(32).toString("base64")}`;

          let theirs: unknown;
          try {
            theirs = new Webhook(receiverSecret).verify(receivedBody, headers);
          } catch {
            theirs = "rejected";
          }
          const ours = await verifyWebhook(receiverSecret, headers, receivedBody).catch((e: unknown) => {
            if (!(e instanceof WebhookVerificationError)) throw e;
            return "rejected";
          });
          expect(ours).to.deep.equal(theirs);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("webhooks: receivers", () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  async function listen(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const post = (url: string, body: string, headers: Record<string, string>) =>
    fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });

  it("the Express middleware passes a genuine delivery on with its event and answers 400 to a bad one", async () => {
    const seen: Array<{ id: string; event: WebhookEvent }> = [];
    const app = express();
    app.post("/hooks", express.raw({ type: "application/json" }), webhookMiddleware(SECRET), (req, res) => {
      const { webhookEvent, webhookId } = req as unknown as VerifiedWebhookRequest;
      seen.push({ id: webhookId, event: webhookEvent });
      res.status(204).end();
    });
    // No body parser: the middleware reads the body itself.
    app.post("/bare", webhookMiddleware(SECRET), (_req, res) => res.status(204).end());
    // A JSON parser first: the raw bytes are gone, which is a mistake to report, not a bad delivery.
    app.post("/parsed", express.json(), webhookMiddleware(SECRET), (_req, res) => res.status(204).end());
    app.use(((error, _req, res, _next) =>
      res.status(500).json({ error: (error as Error).message })) as express.ErrorRequestHandler);
    const url = await listen(app);

    const genuine = await post(`${url}/hooks`, BODY, signed(BODY, { timestamp: Math.floor(Date.now() / 1000) }));
    expect(genuine.status).to.equal(204);
    expect(seen).to.deep.equal([{ id: "msg_01JXYZ", event: EVENT }]);

    const tampered = await post(`${url}/hooks`, `${BODY} `, signed(BODY, { timestamp: Math.floor(Date.now() / 1000) }));
    expect(tampered.status).to.equal(400);
    expect(await tampered.json()).to.deep.equal({ error: "no matching webhook signature" });
    const old = await post(`${url}/hooks`, BODY, signed(BODY, { timestamp: Math.floor(Date.now() / 1000) - 3600 }));
    expect(old.status).to.equal(400);
    expect(seen).to.have.length(1);

    expect(
      (await post(`${url}/bare`, BODY, signed(BODY, { timestamp: Math.floor(Date.now() / 1000) }))).status,
    ).to.equal(204);
    const parsed = await post(`${url}/parsed`, BODY, signed(BODY, { timestamp: Math.floor(Date.now() / 1000) }));
    expect(parsed.status).to.equal(500);
    expect(((await parsed.json()) as { error: string }).error).to.match(/express\.raw/);
  });

  it("the Node http reader resolves with the event, rejects a bad delivery, and bounds the body", async () => {
    const receive = webhookReader(SECRET, { maxBytes: 4096 });
    const url = await listen((req, res) => {
      receive(req).then(
        (event) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(event)),
        (error: unknown) => {
          const status = error instanceof WebhookVerificationError ? error.status : 500;
          res.writeHead(status).end((error as Error).message);
        },
      );
    });
    const now = () => Math.floor(Date.now() / 1000);
    const genuine = await post(url, BODY, signed(BODY, { timestamp: now() }));
    expect(genuine.status).to.equal(200);
    expect(await genuine.json()).to.deep.equal(EVENT);
    const wrong = await post(url, BODY, signed(BODY, { timestamp: now(), secret: OTHER_SECRET }));
    expect(wrong.status).to.equal(400);
    const big = JSON.stringify({ ...EVENT, pad: "x".repeat(5000) });
    const tooLarge = await post(url, big, signed(big, { timestamp: now() }));
    expect(tooLarge.status).to.equal(413);
  });
});
