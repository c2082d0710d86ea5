import {
  type LanguageModelV4Prompt,
  type LanguageModelV4ToolResultOutput,
  UnsupportedFunctionalityError,
} from "@ai-sdk/provider";
import type { Message, ToolCall } from "@foreman/client";

/**
 * The AI SDK's prompt as Ollama's chat `messages`, the way Ollama itself reads them
 * (api.Message in ollama/ollama): text parts joined into `content`, images as base64 `images`, the
 * assistant's reasoning as `thinking`, its tool calls as `tool_calls` with their arguments as an object,
 * and each tool result as a message of role `tool` naming the tool.
 */
export function toOllamaMessages(prompt: LanguageModelV4Prompt): Message[] {
  const messages: Message[] = [];
  for (const message of prompt) {
    switch (message.role) {
      case "system":
        messages.push({ role: "system", content: message.content });
        break;
      case "user": {
        let content = "";
        const images: string[] = [];
        for (const part of message.content) {
          if (part.type === "text") content += part.text;
          else images.push(imageData(part.mediaType, part.data));
        }
        messages.push(images.length > 0 ? { role: "user", content, images } : { role: "user", content });
        break;
      }
      case "assistant": {
        let content = "";
        let thinking = "";
        const toolCalls: ToolCall[] = [];
        for (const part of message.content) {
          if (part.type === "text") content += part.text;
          else if (part.type === "reasoning") thinking += part.text;
          else if (part.type === "tool-call") {
            toolCalls.push({
              id: part.toolCallId,
              function: { name: part.toolName, arguments: toolArguments(part.input) },
            });
          }
          // Files, provider-executed tool results and custom parts have no place in an Ollama message.
        }
        messages.push({
          role: "assistant",
          content,
          ...(thinking ? { thinking } : {}),
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        });
        break;
      }
      case "tool":
        for (const part of message.content) {
          if (part.type !== "tool-result") continue;
          messages.push({
            role: "tool",
            content: toolResultText(part.output),
            tool_name: part.toolName,
            tool_call_id: part.toolCallId,
          });
        }
        break;
    }
  }
  return messages;
}

/** Ollama takes images only, as base64 without a data URL prefix. */
function imageData(mediaType: string, data: { type: string; data?: Uint8Array | string; url?: URL }): string {
  if (!mediaType.startsWith("image")) {
    throw new UnsupportedFunctionalityError({ functionality: `file parts of type ${mediaType} (Ollama takes images)` });
  }
  if (data.type === "data" && typeof data.data === "string") return data.data;
  if (data.type === "data" && data.data instanceof Uint8Array) return toBase64(data.data);
  if (data.type === "url" && data.url?.protocol === "data:") return data.url.href.replace(/^data:[^,]*,/, "");
  throw new UnsupportedFunctionalityError({ functionality: "image URLs (pass the image's bytes)" });
}

function toolArguments(input: unknown): Record<string, unknown> {
  if (typeof input === "string") {
    try {
      input = JSON.parse(input);
    } catch {
      return { input };
    }
  }
  return typeof input === "object" && input !== null && !Array.isArray(input)
    ? (input as Record<string, unknown>)
    : { input };
}

function toolResultText(output: LanguageModelV4ToolResultOutput): string {
  switch (output.type) {
    case "text":
    case "error-text":
      return output.value;
    case "json":
    case "error-json":
      return JSON.stringify(output.value);
    case "execution-denied":
      return output.reason ? `Tool execution denied: ${output.reason}` : "Tool execution denied.";
    case "content":
      return output.value.map((part) => (part.type === "text" ? part.text : "")).join("");
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
