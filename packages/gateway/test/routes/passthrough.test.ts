import http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { createLogger, loadConfig, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import { makeTempDir } from "../../../../test/temp-dirs.js";
import { createRequestListener } from "../../src/app.js";
import { createTargetProxy } from "../../src/proxy/target-proxy.js";
import { confinedSegment } from "../../src/routes/passthrough.js";

/** A target on a real loopback socket behind a path prefix, recording every path that reaches it. */
async function startRecordingTarget() {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? "");
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, paths, port: (server.address() as AddressInfo).port };
}

/** Sends `path` exactly as written (fetch would resolve its dot-segments before sending). */
function rawRequest(port: number, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("routes/passthrough: paths are confined to Ollama's routes", () => {
  let target: Awaited<ReturnType<typeof startRecordingTarget>>;
  let gateway: http.Server;
  let store: Store;
  let port: number;

  before(async () => {
    target = await startRecordingTarget();
    const dataDir = makeTempDir("foreman-passthrough-");
    const config = loadConfig({
      FOREMAN_DATA_DIR: dataDir,
      FOREMAN_OLLAMA_URL: `http://127.0.0.1:${target.port}/ollama`,
      FOREMAN_MANAGEMENT: "true",
    });
    store = openStore({ dbPath: config.dbPath });
    const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
    const proxy = createTargetProxy({
      targetUrl: config.ollamaUrl,
      token: "operator-token",
      connectTimeoutMs: 1000,
      logger,
    });
    gateway = http.createServer(createRequestListener({ config, store, logger, proxy, wake: () => {} }));
    await new Promise<void>((r) => gateway.listen(0, "127.0.0.1", r));
    port = (gateway.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((r) => gateway.close(r));
    await new Promise((r) => target.server.close(r));
    store.close();
  });
  beforeEach(() => {
    target.paths.length = 0;
  });

  it("forwards a model or blob path under the target's prefix, normalized", async () => {
    for (const [path, expected] of [
      ["/v1/models/llama3.2:latest", "/ollama/v1/models/llama3.2:latest"],
      ["/v1/models/llama3.2%3Alatest", "/ollama/v1/models/llama3.2:latest"],
      ["/v1/models/qwen3?x=1", "/ollama/v1/models/qwen3?x=1"],
      [`/api/blobs/${DIGEST}`, `/ollama/api/blobs/${DIGEST}`],
      ["/api/tags", "/ollama/api/tags"],
    ] as const) {
      const res = await rawRequest(port, path.startsWith("/api/blobs") ? "HEAD" : "GET", path);
      expect(res.status, path).to.equal(200);
      expect(target.paths.at(-1), path).to.equal(expected);
    }
  });

  const escapes = [
    "/v1/models/../../../x",
    "/v1/models/..%2F..%2F..%2Fx",
    "/v1/models/%2e%2e/%2e%2e/x",
    "/v1/models/%2E%2E",
    "/v1/models/..",
    "/v1/models/.",
    "/v1/models/x/../../../admin",
    "/v1/models/x%2f..%2f..%2fadmin",
    "/v1/models/x%5c..%5c..%5cadmin",
    "/v1/models/x\\..\\admin",
    "/v1/models/%252e%252e%252fx",
    "/v1/models/%zz",
    "/v1/models/",
    "/v1/models//etc",
    "/v1/models/x%00",
    `/api/blobs/../../../x`,
    `/api/blobs/${DIGEST}/../../x`,
    `/api/blobs/%2e%2e%2f%2e%2e%2fx`,
    "/api/blobs/sha256:short",
  ];
  for (const path of escapes) {
    it(`refuses ${path} with a 400 and sends nothing to the target`, async () => {
      const res = await rawRequest(port, path.startsWith("/api/blobs") ? "POST" : "GET", path);
      expect(res.status).to.equal(400);
      expect(JSON.parse(res.body)).to.have.property("error").that.is.a("string");
      expect(target.paths).to.deep.equal([]);
    });
  }

  it("does not pass through anything outside Ollama's routes", async () => {
    for (const path of ["/api/tags/../../x", "/api/../admin", "/ollama/x", "/../../x"]) {
      const res = await rawRequest(port, "GET", path);
      expect(res.status, path).to.equal(404);
    }
    expect(target.paths).to.deep.equal([]);
  });

  it("confinedSegment takes one decoded segment of allowed characters only", () => {
    const model = /^[A-Za-z0-9_][A-Za-z0-9._:-]*$/;
    expect(confinedSegment("llama3.2%3A1b", model)).to.equal("llama3.2:1b");
    for (const bad of ["..", ".", "a/b", "a%2Fb", "%", "", "a b"])
      expect(confinedSegment(bad, model), bad).to.equal(null);
  });
});
