import type http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { createLogger, loadConfig, openStore, RelayWriter, type Store } from "@foreman/shared";
import { expect } from "chai";
import { makeTempDir, removeTempDirs } from "../../../test/temp-dirs.js";
import { createApp } from "../src/app.js";
import { createTargetProxy } from "../src/proxy/target-proxy.js";

const WHOLE = JSON.stringify({ model: "m", response: "the whole answer", done: true });

describe("relay-response: a synchronous caller's whole (non-streamed) answer", () => {
  let store: Store;
  let dataDir: string;
  let server: http.Server;
  let base: string;
  let committed: () => void = () => {};

  beforeEach(async () => {
    dataDir = makeTempDir("foreman-gw-relay-");
    const config = loadConfig({ FOREMAN_DATA_DIR: dataDir });
    store = openStore({ dbPath: config.dbPath });
    const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
    const proxy = createTargetProxy({
      targetUrl: "http://127.0.0.1:9",
      token: undefined,
      connectTimeoutMs: 500,
      logger,
    });
    const app = createApp({ config, store, logger, proxy, wake: () => committed() });
    server = await new Promise<http.Server>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    store.close();
    removeTempDirs([dataDir]);
  });

  /** Sends a non-streamed generate and plays the worker once its job is committed: answers whole, then ends it. */
  async function generateAnsweredThen(end: "done" | "failed"): Promise<Response> {
    const jobCommitted = new Promise<void>((resolve) => {
      committed = resolve;
    });
    const answer = fetch(`${base}/api/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", prompt: "p", stream: false }),
    });
    await jobCommitted;
    const { id } = store.db.prepare("SELECT id FROM jobs WHERE state = 'queued'").get() as { id: string };
    store.transitions.transition(id, "loading", { incrementAttempts: true });
    store.transitions.transition(id, "working");
    const relay = RelayWriter.open(dataDir, id);
    relay.start({ attempt: 1, status: 200, content_type: "application/json; charset=utf-8" });
    relay.data(WHOLE);
    if (end === "done") {
      store.transitions.transition(id, "done");
      relay.end({ state: "done" });
    } else {
      // A worker that died after writing the answer but before the job's end: recovery fails the job.
      const error = "worker interrupted while the job was running";
      store.transitions.transition(id, "failed", { error });
      relay.end({ state: "failed", error });
    }
    return answer;
  }

  it("is sent with the target's status once the job is done", async () => {
    const res = await generateAnsweredThen("done");
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal(WHOLE);
  });

  it("is never sent when the job fails after the answer was written: the caller gets the error alone", async () => {
    const res = await generateAnsweredThen("failed");
    expect(res.status).to.equal(500);
    expect(await res.json()).to.deep.equal({ error: "worker interrupted while the job was running" });
  });
});
