import { expect } from "chai";
import { normalizeModelName, sameModel } from "../src/model-name.js";

describe("model-name", () => {
  it("adds :latest where Ollama would, and only there", () => {
    expect(normalizeModelName("llama3.2")).to.equal("llama3.2:latest");
    expect(normalizeModelName("qwen3:8b")).to.equal("qwen3:8b");
    expect(normalizeModelName("registry.local:5000/team/model")).to.equal("registry.local:5000/team/model:latest");
    expect(normalizeModelName("model@sha256:abc")).to.equal("model@sha256:abc");
    expect(sameModel("llama3.2", "llama3.2:latest")).to.equal(true);
    expect(sameModel("llama3.2", undefined)).to.equal(false);
  });
});
