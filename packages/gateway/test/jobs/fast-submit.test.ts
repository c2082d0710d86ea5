import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import zlib from "node:zlib";
import { createLogger, loadConfig, openStore } from "@foreman/shared";
import { expect } from "chai";
import { createRequestListener } from "../../src/app.js";
import { createTargetProxy } from "../../src/proxy/target-proxy.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** The production request listener on a real loopback socket, with a tiny body limit. */
async function startGateway(env: NodeJS.ProcessEnv = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-fast-submit-"));
  const config = loadConfig({ FOREMAN_DATA_DIR: dataDir, FOREMAN_BODY_LIMIT: "1kb", ...env });
  const store = openStore({ dbPath: config.dbPath, workerStaleMs: config.workerStaleMs });
  const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
  // Nothing listens on the discard port: a request that reached the proxy would answer 502.
  const proxy = createTargetProxy({ targetUrl: "http://127.0.0.1:9", token: undefined, connectTimeoutMs: 500, logger });
  let wakes = 0;
  const server = http.createServer(createRequestListener({ config, store, logger, proxy, wake: () => void wakes++ }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const send = (method: string, url: string, body?: string | Buffer, headers: http.OutgoingHttpHeaders = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path: url, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    proxy.close();
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  return { store, send, close, wakes: () => wakes };
}

describe("jobs/fast-submit: POST /jobs on the production listener", () => {
  let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  it("takes a compressed or non-UTF-8 body through the Express route: the same 202, id and queue position", async () => {
    gateway = await startGateway();
    const first = await gateway.send("POST", "/jobs", JSON.stringify({ model: "llama3.2", prompt: "first" }));
    expect(JSON.parse(first.body)).to.include({ position: 1 });
    const gz = await gateway.send("POST", "/jobs", zlib.gzipSync(JSON.stringify({ model: "llama3.2", prompt: "gz" })), {
      "content-type": "application/json",
      "content-encoding": "gzip",
    });
    expect(gz.status).to.equal(202);
    const created = JSON.parse(gz.body) as { id: string; state: string; position: number };
    expect(created).to.include({ state: "queued", position: 2 });
    expect(gz.headers["x-foreman-job-id"]).to.equal(created.id);
    expect(gz.headers["x-foreman-queue-position"]).to.equal("2");
    expect(gateway.store.jobs.get(created.id)?.request).to.include({ prompt: "gz" });
    // A charset JSON is never written in is refused, naming it.
    const latin1 = await gateway.send("POST", "/jobs", Buffer.from('{"model":"m","prompt":"x"}', "latin1"), {
      "content-type": "application/json; charset=latin1",
    });
    expect(latin1.status).to.equal(415);
    expect(JSON.parse(latin1.body).error).to.match(/latin1/i);
  });

  it("commits the job, answers 202 with its Location and id, and wakes the worker", async () => {
    gateway = await startGateway();
    const res = await gateway.send("POST", "/jobs", JSON.stringify({ model: "llama3.2", prompt: "hi" }));
    expect(res.status).to.equal(202);
    const job = JSON.parse(res.body);
    expect(job).to.include({ kind: "generate", mode: "async", model: "llama3.2:latest", state: "queued" });
    expect(res.headers.location).to.equal(`/jobs/${job.id}`);
    expect(res.headers["x-foreman-job-id"]).to.equal(job.id);
    expect(res.headers["content-type"]).to.equal("application/json; charset=utf-8");
    expect(gateway.store.jobs.get(job.id)?.state).to.equal("queued");
    expect(gateway.wakes()).to.equal(1);
  });

  it("counts the jobs of a batch still gathering against FOREMAN_MAX_QUEUED_JOBS, and sees room made by another process", async () => {
    gateway = await startGateway({ FOREMAN_MAX_QUEUED_JOBS: "3" });
    const first = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "first" }));
    expect(first.status).to.equal(202);
    const answers = await Promise.all(
      [1, 2, 3, 4].map((n) => gateway!.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: `p${n}` }))),
    );
    expect(answers.map((a) => a.status).sort()).to.deep.equal([202, 202, 503, 503]);
    expect(gateway.store.queueTotals.get().jobs).to.equal(3);
    const refused = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "refused" }));
    expect(refused.status).to.equal(503);
    // A job leaves the queue outside this gateway (as the worker's claim or another gateway's cancel would).
    gateway.store.transitions.requestCancel(JSON.parse(first.body).id);
    const room = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "room" }));
    expect(room.status).to.equal(202);
  });

  it("answers a retried Idempotency-Key with the same job (200, with its queue position), a changed body with 409", async () => {
    gateway = await startGateway();
    const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const first = await gateway.send("POST", "/jobs?source=test", body, { "idempotency-key": "k1" });
    const again = await gateway.send("POST", "/jobs", body, { "idempotency-key": "k1" });
    expect([first.status, again.status]).to.deep.equal([202, 200]);
    expect(JSON.parse(again.body)).to.include({ id: JSON.parse(first.body).id, position: 1 });
    const changed = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "x" }), {
      "idempotency-key": "k1",
    });
    expect(changed.status).to.equal(409);
    expect(JSON.parse(changed.body).error).to.match(/Idempotency-Key "k1" was already used/);
  });

  it("names what is wrong: malformed JSON, a missing field, a think level", async () => {
    gateway = await startGateway();
    const malformed = await gateway.send("POST", "/jobs", "{not json");
    expect(malformed.status).to.equal(400);
    expect(JSON.parse(malformed.body).error).to.match(/^invalid JSON body: /);
    const missing = await gateway.send("POST", "/jobs", JSON.stringify({ prompt: "hi" }));
    expect(missing.status).to.equal(400);
    expect(JSON.parse(missing.body).error).to.match(/model/);
    const think = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "p", think: "maximal" }));
    expect(think.status).to.equal(400);
    expect(JSON.parse(think.body).error).to.match(/^think/);
  });

  it("accepts every think level Ollama does", async () => {
    gateway = await startGateway();
    for (const think of [true, false, "high", "medium", "low", "max"]) {
      const res = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "p", think }));
      expect(res.status, String(think)).to.equal(202);
    }
  });

  it("refuses a body over FOREMAN_BODY_LIMIT with a 413 naming the limit, and commits nothing", async () => {
    gateway = await startGateway();
    const big = JSON.stringify({ model: "m", prompt: "x".repeat(4096) });
    const res = await gateway.send("POST", "/jobs", big);
    expect(res.status).to.equal(413);
    expect(JSON.parse(res.body)).to.deep.equal({
      error: "request body too large (limit 1024 bytes, FOREMAN_BODY_LIMIT)",
    });
    expect(gateway.store.jobs.list({ limit: 10 })).to.have.length(0);
  });

  it("refuses an embedding body over the limit the same way, before it reaches the target", async () => {
    gateway = await startGateway();
    const res = await gateway.send("POST", "/api/embed", JSON.stringify({ model: "m", input: "x".repeat(4096) }));
    expect(res.status).to.equal(413);
    expect(JSON.parse(res.body).error).to.equal("request body too large (limit 1024 bytes, FOREMAN_BODY_LIMIT)");
  });

  it("refuses a queued generation body over the limit with the same words (Express's body parser)", async () => {
    gateway = await startGateway();
    const res = await gateway.send("POST", "/api/chat", JSON.stringify({ model: "m", messages: "x".repeat(4096) }));
    expect(res.status).to.equal(413);
    expect(JSON.parse(res.body).error).to.equal("request body too large (limit 1024 bytes, FOREMAN_BODY_LIMIT)");
  });

  it("answers POST /jobs without the API token with a 401, committing nothing", async () => {
    gateway = await startGateway({ FOREMAN_API_TOKEN: "0123456789abcdef-token" });
    const res = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "p" }));
    expect(res.status).to.equal(401);
    expect(JSON.parse(res.body).error).to.match(/bearer token/);
    expect(gateway.store.jobs.list({ limit: 10 })).to.have.length(0);
    const authorized = await gateway.send("POST", "/jobs", JSON.stringify({ model: "m", prompt: "p" }), {
      authorization: "Bearer 0123456789abcdef-token",
    });
    expect(authorized.status).to.equal(202);
  });
});
