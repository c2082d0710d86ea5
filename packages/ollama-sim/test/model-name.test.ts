import { expect } from "chai";
import { displayShortest, fullModelName, isValidModelName, modelKey, parseModelName } from "../src/model-name.js";

describe("model-name", () => {
  it("fills in Ollama's defaults", () => {
    const name = parseModelName("llama3.2");
    expect(name).to.deep.equal({ host: "registry.ollama.ai", namespace: "library", model: "llama3.2", tag: "latest" });
    expect(displayShortest(name)).to.equal("llama3.2:latest");
    expect(fullModelName(name)).to.equal("registry.ollama.ai/library/llama3.2:latest");
  });

  it("keeps namespaces and hosts in the short form only when they are not the defaults", () => {
    expect(displayShortest(parseModelName("me/mine:1b"))).to.equal("me/mine:1b");
    expect(displayShortest(parseModelName("example.com/team/model:q4"))).to.equal("example.com/team/model:q4");
    expect(displayShortest(parseModelName("registry.ollama.ai/library/qwen3:8b"))).to.equal("qwen3:8b");
  });

  it("matches case-insensitively", () => {
    expect(modelKey(parseModelName("Llama3.2:LATEST"))).to.equal(modelKey(parseModelName("llama3.2")));
  });

  it("rejects names Ollama rejects", () => {
    expect(isValidModelName(parseModelName("llama3.2:latest"))).to.equal(true);
    expect(isValidModelName(parseModelName("bad name"))).to.equal(false);
    expect(isValidModelName(parseModelName(".hidden"))).to.equal(false);
    expect(isValidModelName(parseModelName("a:b:c"))).to.equal(false);
  });
});
