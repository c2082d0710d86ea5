import { expect } from "chai";
import { createEmbedRouting } from "../../src/routes/embed-routing.js";
import { createEmbedderMatcher, pinnedBody } from "../../src/routes/pin-embedder.js";

const buf = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
const namesEmbedder = createEmbedderMatcher("nomic-embed-text:latest");
/** What the embedder's route sends on: the body pinned when it names the embedder, else as it came. */
const pin = (body: Buffer) => {
  const text = namesEmbedder(body);
  return text === null ? body : pinnedBody(text, body);
};

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
    const unset = createEmbedRouting({ embedModel: undefined, pin: true })(plain, {});
    expect(unset.to === "target" && unset.body).to.equal(plain);
  });
});
