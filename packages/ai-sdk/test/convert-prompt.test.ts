import { expect } from "chai";
import { toOllamaMessages } from "../src/convert-prompt.js";

describe("ai-sdk: the prompt as Ollama messages", () => {
  it("maps every role as Ollama reads it: images, thinking, tool calls and tool results", () => {
    const messages = toOllamaMessages([
      { role: "system", content: "Be brief." },
      {
        role: "user",
        content: [
          { type: "text", text: "What is in " },
          { type: "text", text: "this picture?" },
          { type: "file", mediaType: "image/png", data: { type: "data", data: Uint8Array.of(1, 2, 3) } },
        ],
      },
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "Let me look it up." },
          { type: "text", text: "Checking." },
          { type: "tool-call", toolCallId: "call_1", toolName: "weather", input: { city: "Oslo" } },
        ],
      },
      {
        role: "tool",
        content: [
          { type: "tool-result", toolCallId: "call_1", toolName: "weather", output: { type: "json", value: { c: 3 } } },
        ],
      },
    ]);
    expect(messages).to.deep.equal([
      { role: "system", content: "Be brief." },
      { role: "user", content: "What is in this picture?", images: ["AQID"] },
      {
        role: "assistant",
        content: "Checking.",
        thinking: "Let me look it up.",
        tool_calls: [{ id: "call_1", function: { name: "weather", arguments: { city: "Oslo" } } }],
      },
      { role: "tool", content: '{"c":3}', tool_name: "weather", tool_call_id: "call_1" },
    ]);
  });

  it("refuses files that are not images, which Ollama cannot take", () => {
    const pdf = () =>
      toOllamaMessages([
        {
          role: "user",
          content: [{ type: "file", mediaType: "application/pdf", data: { type: "data", data: "JVBERi0=" } }],
        },
      ]);
    expect(pdf).to.throw(/application\/pdf/);
  });
});
