import { expect } from "chai";
import { contextTokens, joinTokens, planGeneration } from "../src/generation.js";

const base = { model: "llama3.2:latest", prompt: "Why is the sky blue?", think: false, json: false, defaultTokens: 24 };

describe("generation", () => {
  it("is a deterministic function of model, prompt and seed", () => {
    const a = planGeneration(base);
    expect(planGeneration(base).tokens).to.deep.equal(a.tokens);
    expect(planGeneration({ ...base, seed: 7 }).tokens).to.not.deep.equal(a.tokens);
    expect(planGeneration({ ...base, prompt: "other" }).tokens).to.not.deep.equal(a.tokens);
    expect(planGeneration({ ...base, model: "qwen3:8b" }).tokens).to.not.deep.equal(a.tokens);
  });

  it("stops by itself after the default count, ending a sentence", () => {
    const plan = planGeneration(base);
    expect(plan.tokens).to.have.length(24);
    expect(plan.doneReason).to.equal("stop");
    const text = joinTokens(plan.tokens);
    expect(text).to.match(/^[A-Z]/);
    expect(text.endsWith(".")).to.equal(true);
  });

  it("makes exactly num_predict tokens with done_reason length", () => {
    const plan = planGeneration({ ...base, numPredict: 1000 });
    expect(plan.tokens).to.have.length(1000);
    expect(plan.doneReason).to.equal("length");
  });

  it("thinks first when thinking is on", () => {
    const plan = planGeneration({ ...base, think: true, numPredict: 30 });
    expect(plan.thinkingCount).to.equal(10);
    expect(plan.tokens).to.have.length(30);
    expect(joinTokens(plan.tokens, 0, plan.thinkingCount)).to.match(/^[A-Z].*\.$/);
  });

  it("answers JSON mode with one valid JSON object", () => {
    for (const numPredict of [undefined, 5, 40]) {
      const plan = planGeneration({ ...base, json: true, numPredict });
      const parsed = JSON.parse(joinTokens(plan.tokens)) as { answer: string };
      expect(parsed.answer).to.be.a("string").and.not.equal("");
    }
  });

  it("derives stable context ids", () => {
    expect(contextTokens("x", 5)).to.deep.equal(contextTokens("x", 5));
    expect(contextTokens("x", 5)).to.have.length(5);
  });
});
