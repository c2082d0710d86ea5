import os from "node:os";
import { PassThrough } from "node:stream";
import { createLogger, loadConfig, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import request from "supertest";
import { makeTempDir } from "../../../test/temp-dirs.js";
import { createApp } from "../src/app.js";
import { createTargetProxy } from "../src/proxy/target-proxy.js";

function build(env: NodeJS.ProcessEnv = {}) {
  const dataDir = makeTempDir("foreman-gw-");
  const config = loadConfig({ FOREMAN_DATA_DIR: dataDir, ...env });
  const store = openStore({ dbPath: config.dbPath, workerStaleMs: config.workerStaleMs });
  const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
  const proxy = createTargetProxy({ targetUrl: "http://127.0.0.1:9", token: undefined, connectTimeoutMs: 500, logger });
  return { app: createApp({ config, store, logger, proxy, wake: () => {} }), store };
}

describe("gateway app", () => {
  let store: Store | undefined;
  afterEach(() => store?.close());

  it("answers GET / and HEAD / as Ollama does", async () => {
    const built = build();
    store = built.store;
    const get = await request(built.app).get("/");
    expect(get.status).to.equal(200);
    expect(get.text).to.equal("Ollama is running");
    expect(get.headers["content-type"]).to.equal("text/plain; charset=utf-8");
    const head = await request(built.app).head("/");
    expect(head.status).to.equal(200);
    expect(head.text ?? "").to.equal("");
  });

  it("healthz answers without any dependency", async () => {
    const built = build();
    store = built.store;
    built.store.close();
    const res = await request(built.app).get("/healthz");
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: "ok" });
  });

  it("readyz is 503 without a worker heartbeat and 200 with a fresh one", async () => {
    const built = build();
    store = built.store;
    const before = await request(built.app).get("/readyz");
    expect(before.status).to.equal(503);
    expect(before.body.database.writable).to.equal(true);
    expect(before.body.worker.fresh).to.equal(false);

    built.store.workerLease.tryAcquire({ workerId: "w", pid: process.pid, hostname: os.hostname() });
    const downSince = Date.now() - 60_000;
    built.store.target.record({
      reachable: false,
      version: null,
      resident: [],
      lastCheckedAt: downSince,
      lastError: "ECONNREFUSED",
    });
    built.store.target.record({
      reachable: false,
      version: null,
      resident: [],
      lastCheckedAt: Date.now(),
      lastError: "x",
    });
    for (const prompt of ["a", "b"]) {
      built.store.transitions.createJob({
        kind: "generate",
        api: "ollama",
        mode: "async",
        model: "m",
        request: { prompt },
      });
    }
    const after = await request(built.app).get("/readyz");
    expect(after.status).to.equal(200);
    expect(after.body.status).to.equal("ready");
    // An unreachable target does not make foreman unready: jobs still queue. The body says
    // since when it is down and how many jobs wait.
    expect(after.body.target).to.deep.equal({
      reachable: false,
      down_since: new Date(downSince).toISOString(),
      last_seen_at: null,
    });
    expect(after.body.queue).to.deep.equal({ queued: 2 });
  });

  it("readyz shows the worker's pid, host and job, and the target's errors, only to a caller with the token", async () => {
    const token = "0123456789abcdef-token";
    const built = build({ FOREMAN_API_TOKEN: token });
    store = built.store;
    built.store.workerLease.tryAcquire({ workerId: "w", pid: 4242, hostname: "secret-host" });
    built.store.target.record({
      reachable: false,
      version: null,
      resident: [],
      lastCheckedAt: Date.now(),
      lastError: "ECONNREFUSED 10.1.2.3:11434",
    });
    const open = await request(built.app).get("/readyz");
    expect(open.status).to.equal(200);
    const text = JSON.stringify(open.body);
    expect(text).to.not.include("4242").and.not.include("secret-host").and.not.include("10.1.2.3");
    expect(open.body.worker).to.have.keys("fresh", "heartbeat_age_ms");
    const wrong = await request(built.app).get("/readyz").set("Authorization", "Bearer nope");
    expect(JSON.stringify(wrong.body)).to.not.include("secret-host");
    const authorized = await request(built.app).get("/readyz").set("Authorization", `Bearer ${token}`);
    expect(authorized.body.worker).to.include({ pid: 4242, hostname: "secret-host", current_job_id: null });
    expect(authorized.body.target).to.include({ last_error: "ECONNREFUSED 10.1.2.3:11434" });
  });

  it("readyz is 503 when the database cannot take a write", async () => {
    const built = build();
    store = built.store;
    built.store.workerLease.tryAcquire({ workerId: "w", pid: process.pid, hostname: os.hostname() });
    built.store.db.exec(
      "CREATE TRIGGER no_writes BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'disk is full'); END",
    );
    built.store.db.exec(
      "CREATE TRIGGER no_inserts BEFORE INSERT ON meta BEGIN SELECT RAISE(ABORT, 'disk is full'); END",
    );
    const res = await request(built.app).get("/readyz");
    expect(res.status).to.equal(503);
    expect(res.body.database).to.deep.equal({ writable: false, file: "ok" });
  });

  describe("with FOREMAN_API_TOKEN", () => {
    const token = "0123456789abcdef-token";
    it("requires the bearer token on every route but /, healthz and readyz", async () => {
      const built = build({ FOREMAN_API_TOKEN: token });
      store = built.store;
      for (const open of ["/", "/healthz"]) {
        expect((await request(built.app).get(open)).status, open).to.equal(200);
      }
      expect((await request(built.app).get("/readyz")).status).to.equal(503);
      const missing = await request(built.app).get("/api/anything");
      expect(missing.status).to.equal(401);
      expect(missing.body.error).to.match(/bearer token/);
      expect(JSON.stringify(missing.body)).to.not.include(token);
      const wrong = await request(built.app).get("/api/anything").set("Authorization", "Bearer nope");
      expect(wrong.status).to.equal(401);
      const right = await request(built.app).get("/api/anything").set("Authorization", `Bearer ${token}`);
      expect(right.status).to.equal(404);
      expect(right.text).to.equal("404 page not found");
    });
  });

  it("answers an unknown route with Ollama's 404", async () => {
    const built = build();
    store = built.store;
    const res = await request(built.app).get("/nope");
    expect(res.status).to.equal(404);
    expect(res.text).to.equal("404 page not found");
  });
});
