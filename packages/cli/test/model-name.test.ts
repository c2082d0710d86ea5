import { expect } from "chai";
import { normalizeModelName as sharedNormalize } from "../../shared/src/model-name.js";
import { normalizeModelName, sameModel } from "../src/model-name.js";

describe("model-name", () => {
  it("gives the same answers as the rule in @foreman/shared", () => {
    const names = [
      "llama3.2",
      "llama3.2:latest",
      "qwen3:8b",
      "library/llama3.2",
      "registry.example:5000/team/model",
      "registry.example:5000/team/model:v1",
      "model@sha256:abc",
      "hf.co/org/Model-GGUF:Q4_K_M",
    ];
    for (const name of names) expect(normalizeModelName(name), name).to.equal(sharedNormalize(name));
  });

  it("treats a missing tag as :latest", () => {
    expect(sameModel("llama3.2", "llama3.2:latest")).to.equal(true);
    expect(sameModel("llama3.2", "llama3.2:1b")).to.equal(false);
    expect(sameModel(undefined, "x")).to.equal(false);
  });
});
