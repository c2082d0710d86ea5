import { expect } from "chai";
import { pinEmbedder } from "../../src/routes/pin-embedder.js";

const buf = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));

describe("routes/pin-embedder", () => {
  it("pins the configured embedder when the caller chose no keep_alive", () => {
    const out = pinEmbedder(buf({ model: "nomic-embed-text", input: "hi" }), "nomic-embed-text");
    expect(JSON.parse(out.toString())).to.deep.equal({ model: "nomic-embed-text", input: "hi", keep_alive: -1 });
  });

  it("keeps the caller's own keep_alive", () => {
    const body = buf({ model: "nomic-embed-text", input: "hi", keep_alive: "1m" });
    expect(pinEmbedder(body, "nomic-embed-text")).to.equal(body);
  });

  it("leaves other models, malformed JSON and unset embedder untouched", () => {
    const other = buf({ model: "all-minilm", input: "nomic-embed-text" });
    expect(pinEmbedder(other, "nomic-embed-text")).to.equal(other);
    const broken = buf('{"model": "nomic-embed-text", ');
    expect(pinEmbedder(broken, "nomic-embed-text")).to.equal(broken);
    const plain = buf({ model: "nomic-embed-text" });
    expect(pinEmbedder(plain, undefined)).to.equal(plain);
  });
});
