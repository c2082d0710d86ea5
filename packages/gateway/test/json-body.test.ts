import { PassThrough } from "node:stream";
import { createLogger, loadConfig, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import fc from "fast-check";
import request from "supertest";
import { makeTempDir } from "../../../test/temp-dirs.js";
import { createApp } from "../src/app.js";
import { MAX_JSON_DEPTH, nestsDeeperThan, parseJsonBody } from "../src/json-body.js";
import { createTargetProxy } from "../src/proxy/target-proxy.js";

/** Nesting depth of a parsed value: a scalar is 0, `[]` and `{}` are 1. */
function depth(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depth));
  if (value && typeof value === "object") return 1 + Math.max(0, ...Object.values(value).map(depth));
  return 0;
}

const nested = (levels: number, inner = "1") => `${"[".repeat(levels)}${inner}${"]".repeat(levels)}`;

describe("json-body", () => {
  it("measures nesting as the parsed value has it, brackets inside strings not counted", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.nat(14), (value, max) => {
        const body = Buffer.from(JSON.stringify(value));
        expect(nestsDeeperThan(body, max)).to.equal(depth(value) > max);
      }),
      { numRuns: 500 },
    );
    expect(nestsDeeperThan(Buffer.from(`{"a":"${"[".repeat(1000)}"}`), 2)).to.equal(false);
    expect(nestsDeeperThan(Buffer.from(`{"a":"\\\\","b":${nested(3)}}`), 3)).to.equal(true);
  });

  it("the raw parser refuses deep nesting and bad UTF-8 with a ValidationError (400)", () => {
    expect(() => parseJsonBody(Buffer.from(`{"a":${nested(5000)}}`))).to.throw(/deeper than 256 levels/);
    expect(() => parseJsonBody(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]))).to.throw(/not valid UTF-8/);
    expect(parseJsonBody(Buffer.from(`{"a":${nested(MAX_JSON_DEPTH - 1)}}`))).to.be.an("object");
    expect(parseJsonBody(Buffer.alloc(0))).to.deep.equal({});
  });

  describe("on the Express routes", () => {
    let store: Store;
    let app: ReturnType<typeof createApp>;
    before(() => {
      const config = loadConfig({ FOREMAN_DATA_DIR: makeTempDir("foreman-json-") });
      store = openStore({ dbPath: config.dbPath });
      const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
      const proxy = createTargetProxy({
        targetUrl: "http://127.0.0.1:9",
        token: undefined,
        connectTimeoutMs: 500,
        logger,
      });
      app = createApp({ config, store, logger, proxy, wake: () => {} });
    });
    after(() => store.close());

    for (const route of ["/jobs", "/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions"]) {
      it(`${route}: 5,000 levels of nesting get a 400, not a 500`, async () => {
        const res = await request(app)
          .post(route)
          .set("content-type", "application/json")
          .send(`{"model":"m","prompt":"x","messages":[],"options":${nested(5000)}}`);
        expect(res.status).to.equal(400);
        expect(res.body.error).to.match(/nests arrays and objects deeper than 256 levels/);
      });

      it(`${route}: a body that is not UTF-8 gets a 400`, async () => {
        // Sent as octet-stream so the test client passes the bytes as they are; foreman reads any type as JSON.
        const res = await request(app)
          .post(route)
          .set("content-type", "application/octet-stream")
          .send(Buffer.concat([Buffer.from('{"model":"m","prompt":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]));
        expect(res.status).to.equal(400);
        expect(res.body.error).to.equal("request body is not valid UTF-8");
      });
    }
  });
});
