import { InvalidArgumentError, type LanguageModelV4CallOptions } from "@ai-sdk/provider";
import { expect } from "chai";
import { toJobCall } from "../src/call-settings.js";

const PROMPT: LanguageModelV4CallOptions["prompt"] = [{ role: "user", content: [{ type: "text", text: "hi" }] }];
const WEATHER = {
  type: "function" as const,
  name: "weather",
  description: "The weather in a city",
  inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

describe("ai-sdk: call settings as a foreman chat job", () => {
  it("maps the sampling settings to Ollama's options, and foreman's own options override them", () => {
    const { request, warnings } = toJobCall({
      prompt: PROMPT,
      maxOutputTokens: 64,
      temperature: 0.2,
      topP: 0.9,
      topK: 40,
      seed: 7,
      stopSequences: ["\n\n"],
      presencePenalty: 0.1,
      frequencyPenalty: 0.3,
      providerOptions: { foreman: { options: { num_ctx: 8192, temperature: 0 } } },
    });
    expect(request.options).to.deep.equal({
      num_predict: 64,
      temperature: 0,
      top_p: 0.9,
      top_k: 40,
      seed: 7,
      stop: ["\n\n"],
      presence_penalty: 0.1,
      frequency_penalty: 0.3,
      num_ctx: 8192,
    });
    expect(warnings).to.deep.equal([]);
  });

  it('a JSON response format becomes `format`: the schema itself when there is one, else "json"', () => {
    const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] };
    expect(toJobCall({ prompt: PROMPT, responseFormat: { type: "json", schema } }).request.format).to.deep.equal(
      schema,
    );
    expect(toJobCall({ prompt: PROMPT, responseFormat: { type: "json" } }).request.format).to.equal("json");
    expect(toJobCall({ prompt: PROMPT, responseFormat: { type: "text" } }).request).to.not.have.property("format");
  });

  it("tools become Ollama's tools; toolChoice none drops them, a forced choice is a warning", () => {
    const auto = toJobCall({ prompt: PROMPT, tools: [WEATHER] });
    expect(auto.request.tools).to.deep.equal([
      {
        type: "function",
        function: { name: "weather", description: "The weather in a city", parameters: WEATHER.inputSchema },
      },
    ]);
    expect(toJobCall({ prompt: PROMPT, tools: [WEATHER], toolChoice: { type: "none" } }).request).to.not.have.property(
      "tools",
    );
    const other = { ...WEATHER, name: "other" };
    const named = toJobCall({
      prompt: PROMPT,
      tools: [WEATHER, other],
      toolChoice: { type: "tool", toolName: "other" },
    });
    expect(named.request.tools?.map((t) => t.function.name)).to.deep.equal(["other"]);
    expect(named.warnings).to.have.length(1).and.to.have.nested.property("[0].type", "compatibility");
    const provider = toJobCall({
      prompt: PROMPT,
      tools: [{ type: "provider", id: "openai.web_search", name: "search", args: {} }],
    });
    expect(provider.request).to.not.have.property("tools");
    expect(provider.warnings).to.deep.equal([{ type: "unsupported", feature: "provider tool openai.web_search" }]);
  });

  it("reasoning becomes think; foreman's metadata, webhook, idempotency key and keep-alive pass through", () => {
    expect(toJobCall({ prompt: PROMPT, reasoning: "none" }).request.think).to.equal(false);
    expect(toJobCall({ prompt: PROMPT, reasoning: "minimal" }).request.think).to.equal("low");
    expect(toJobCall({ prompt: PROMPT, reasoning: "provider-default" }).request).to.not.have.property("think");
    const max = toJobCall({ prompt: PROMPT, reasoning: "max" });
    expect(max.request.think).to.equal("high");
    expect(max.warnings).to.have.length(1);

    const webhook = { url: "https://hooks.example/foreman", events: ["job.done" as const] };
    const call = toJobCall({
      prompt: PROMPT,
      providerOptions: {
        foreman: { metadata: { batch: 3 }, idempotencyKey: "batch-3/7", webhook, keepAlive: "10m", think: "medium" },
      },
    });
    expect(call.idempotencyKey).to.equal("batch-3/7");
    expect(call.request).to.deep.include({ metadata: { batch: 3 }, webhook, keep_alive: "10m", think: "medium" });
  });

  it("refuses foreman options of the wrong shape, naming them", () => {
    for (const [foreman, name] of [
      [{ metadata: "x" }, "providerOptions.foreman.metadata"],
      [{ idempotencyKey: 5 }, "providerOptions.foreman.idempotencyKey"],
      [{ webhook: { secret: "whsec_x" } }, "providerOptions.foreman.webhook"],
      [{ think: "max" }, "providerOptions.foreman.think"],
    ] as const) {
      const call = () => toJobCall({ prompt: PROMPT, providerOptions: { foreman: foreman as never } });
      expect(call).to.throw(InvalidArgumentError, new RegExp(`^${name.replace(/\./g, "\\.")} `));
    }
  });
});
