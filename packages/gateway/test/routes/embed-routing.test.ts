import { expect } from "chai";
import { createEmbedRouting, type EmbedDestination } from "../../src/routes/embed-routing.js";

const EMBEDDER = "nomic-embed-text:latest";
const json = { "content-type": "application/json" };
const buf = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));

describe("routes/embed-routing", () => {
  const route = createEmbedRouting({ embedModel: EMBEDDER, pin: true });
  const routeV1 = createEmbedRouting({ embedModel: EMBEDDER, pin: false });

  it("sends the embedder's requests to the target, pinned on the native routes, untouched on /v1", () => {
    const body = buf({ model: EMBEDDER, input: "hi" });
    const native = route(body, json);
    expect(native.to).to.equal("target");
    expect(JSON.parse((native as { body: Buffer }).body.toString())).to.deep.equal({
      keep_alive: -1,
      model: EMBEDDER,
      input: "hi",
    });
    const v1 = routeV1(body, json);
    expect(v1).to.deep.equal({ to: "target", body });
    expect((v1 as { body: Buffer }).body).to.equal(body);
  });

  it("sends the embedder spelled another way to the target (the name normalized)", () => {
    const untagged = buf({ input: "hi", model: "nomic-embed-text" });
    expect(route(untagged, json)).to.deep.equal({ to: "target", body: untagged });
    const escaped = buf('{"model":"nomic\\u002dembed-text:latest","input":"hi"}');
    expect(route(escaped, json)).to.deep.equal({ to: "target", body: escaped });
  });

  it("queues a request for any other model, with its parsed body", () => {
    const request = { model: "mxbai-embed-large", input: ["a", "b"], options: { num_ctx: 512 } };
    expect(route(buf(request), json)).to.deep.equal({ to: "queue", model: "mxbai-embed-large", request });
    // The embedder's name inside the input, or as a prefix of another name, is not the embedder.
    const mention = { model: "all-minilm", input: `say "model": "${EMBEDDER}"` };
    expect(route(buf(mention), json)).to.deep.equal({ to: "queue", model: "all-minilm", request: mention });
    const prefix = { model: `${EMBEDDER}-v2`, input: "x" };
    expect(route(buf(prefix), json)).to.deep.equal({ to: "queue", model: prefix.model, request: prefix });
  });

  it("refuses with a message a body whose model cannot be told", () => {
    const cases: Array<[string, RegExp]> = [
      ["{not json", /^invalid JSON body: /],
      ['["a"]', /^request body must be a JSON object$/],
      ["null", /^request body must be a JSON object$/],
      ['{"model": 7, "input": "x"}', /^model must be a string$/],
      ['{"input": "x"}', /^model is required$/],
      ['{"model": "", "input": "x"}', /^model is required$/],
      ["", /^model is required$/],
    ];
    for (const [text, error] of cases) {
      const out = route(buf(text), json) as Extract<EmbedDestination, { to: "refused" }>;
      expect(out.to, text).to.equal("refused");
      expect(out.error, text).to.match(error);
    }
    const latin1 = Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0x22, 0x7d]);
    expect(route(latin1, json)).to.deep.equal({ to: "refused", error: "request body is not valid UTF-8" });
  });

  it("sends a body it cannot read cheaply (compressed, another charset) to the target as it came", () => {
    const body = Buffer.from([0x1f, 0x8b, 0x08, 0x00]);
    expect(route(body, { ...json, "content-encoding": "gzip" })).to.deep.equal({ to: "target", body });
    const latin1 = buf({ model: "all-minilm", input: "x" });
    expect(route(latin1, { "content-type": "application/json; charset=latin1" })).to.deep.equal({
      to: "target",
      body: latin1,
    });
  });

  it("sends everything to the target, unparsed, when no embedder is configured", () => {
    const unset = createEmbedRouting({ embedModel: undefined, pin: true });
    for (const text of ['{"model":"all-minilm","input":"x"}', "{not json", `{"model":"${EMBEDDER}"}`]) {
      const body = buf(text);
      const out = unset(body, json) as { to: string; body: Buffer };
      expect(out.to).to.equal("target");
      expect(out.body).to.equal(body);
    }
  });
});
