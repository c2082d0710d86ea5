import { expect } from "chai";
import { EmbeddingCache, embeddingTokenCount } from "../src/embedding.js";

describe("embedding", () => {
  it("makes deterministic unit vectors whose JSON matches their values", () => {
    const cache = new EmbeddingCache();
    const a = cache.get("m", 768, "hello");
    expect(new EmbeddingCache().get("m", 768, "hello").json).to.equal(a.json);
    expect(cache.get("m", 768, "hello")).to.equal(a); // cached
    expect(cache.get("m", 768, "other").json).to.not.equal(a.json);
    const parsed = JSON.parse(a.json) as number[];
    expect(parsed).to.have.length(768);
    parsed.forEach((v, i) => {
      expect(v).to.be.closeTo(a.values[i] as number, 1e-7);
    });
    expect(Math.hypot(...parsed)).to.be.closeTo(1, 1e-6);
  });

  it("cuts to fewer dimensions and renormalizes", () => {
    const vector = JSON.parse(new EmbeddingCache().get("m", 768, "x", 32).json) as number[];
    expect(vector).to.have.length(32);
    expect(Math.hypot(...vector)).to.be.closeTo(1, 1e-6);
  });

  it("evicts the oldest entry past its bound", () => {
    const cache = new EmbeddingCache(2);
    const first = cache.get("m", 4, "1");
    cache.get("m", 4, "2");
    cache.get("m", 4, "3");
    expect(cache.get("m", 4, "1")).to.not.equal(first);
  });

  it("counts tokens roughly", () => {
    expect(embeddingTokenCount("")).to.equal(2);
    expect(embeddingTokenCount("abcdefgh")).to.equal(4);
  });
});
