import { expect } from "chai";
import { createEmbedderPinner } from "../../src/routes/pin-embedder.js";

const buf = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
const pin = createEmbedderPinner("nomic-embed-text:latest");

describe("routes/pin-embedder", () => {
  it("pins the configured embedder when the caller chose no keep_alive", () => {
    const out = pin(buf({ model: "nomic-embed-text:latest", input: "hi" }));
    expect(JSON.parse(out.toString())).to.deep.equal({ model: "nomic-embed-text:latest", input: "hi", keep_alive: -1 });
    const spaced = pin(buf('  { "model" : "nomic-embed-text:latest" }'));
    expect(JSON.parse(spaced.toString())).to.deep.equal({ model: "nomic-embed-text:latest", keep_alive: -1 });
  });

  it("keeps the caller's own keep_alive", () => {
    const body = buf({ model: "nomic-embed-text:latest", input: "hi", keep_alive: "1m" });
    expect(pin(body)).to.equal(body);
  });

  it("leaves other models, a name only inside the input, malformed JSON and an unset embedder untouched", () => {
    const other = buf({ model: "all-minilm", input: 'say "model": "nomic-embed-text:latest"' });
    expect(pin(other)).to.equal(other);
    const prefix = buf({ model: "nomic-embed-text:latest-v2", input: "x" });
    expect(pin(prefix)).to.equal(prefix);
    const array = buf('["nomic-embed-text:latest"]');
    expect(pin(array)).to.equal(array);
    const plain = buf({ model: "nomic-embed-text:latest" });
    expect(createEmbedderPinner(undefined)(plain)).to.equal(plain);
  });
});
