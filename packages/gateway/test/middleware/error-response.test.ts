import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { createLogger, loadConfig, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import request from "supertest";
import { createRequestListener } from "../../src/app.js";
import { createTargetProxy } from "../../src/proxy/target-proxy.js";

describe("gateway: a store that cannot take writes", () => {
  let dataDir: string;
  let store: Store;
  let listener: ReturnType<typeof createRequestListener>;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-gw-full-"));
    const config = loadConfig({ FOREMAN_DATA_DIR: dataDir });
    store = openStore({ dbPath: config.dbPath });
    const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
    const proxy = createTargetProxy({
      targetUrl: "http://127.0.0.1:9",
      token: undefined,
      connectTimeoutMs: 500,
      logger,
    });
    listener = createRequestListener({ config, store, logger, proxy, wake: () => {} });
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const submit = (prompt = "hello") =>
    request(listener).post("/jobs").set("content-type", "application/json").send({ model: "m", prompt });

  it("answers POST /jobs with a 503 that says the disk is full, and keeps what was stored", async () => {
    const kept = await submit();
    expect(kept.status).to.equal(202);
    // SQLite's own limit stands in for a full disk: no page can be added past the current count.
    const pages = store.db.pragma("page_count", { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages}`);
    const res = await submit("x".repeat(256 * 1024));
    expect(res.status).to.equal(503);
    expect(res.body.error).to.match(/disk is full/);
    expect(store.jobs.get(kept.body.id)?.state).to.equal("queued");
  });

  it("answers a synchronous chat with a 503 that says the database is read-only", async () => {
    store.db.pragma("query_only = 1");
    const res = await request(listener)
      .post("/api/chat")
      .send({ model: "m", messages: [{ role: "user", content: "hi" }] });
    expect(res.status).to.equal(503);
    expect(res.body.error).to.match(/read-only/);
  });
});
