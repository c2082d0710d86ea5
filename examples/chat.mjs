#!/usr/bin/env node
// A streaming chat through foreman with the Vercel AI SDK: `streamText` on foreman's durable job streams,
// so the answer keeps coming after a dropped connection or a gateway restart, without a token lost or
// repeated. Ctrl-C stops the answer being written and cancels its job.
//
//   FOREMAN_URL=http://127.0.0.1:11435 node examples/chat.mjs --model llama3.2            # a conversation
//   FOREMAN_URL=http://127.0.0.1:11435 node examples/chat.mjs "Why is the sky blue?"      # one question
//
// Environment: FOREMAN_URL (default http://127.0.0.1:11435), FOREMAN_API_TOKEN (when the gateway has one).

import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { foreman } from "@foreman/ai-sdk";
import { streamText } from "ai";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "llama3.2" },
    system: { type: "string", default: "You are a helpful assistant. Answer briefly." },
    "max-tokens": { type: "string" },
  },
});

const messages = [];

/** Streams one answer to stdout; resolves with its text, or null when it was stopped. */
async function answer(question) {
  messages.push({ role: "user", content: question });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  const result = streamText({
    model: foreman(args.model),
    system: args.system,
    messages,
    abortSignal: controller.signal,
    ...(args["max-tokens"] ? { maxOutputTokens: Number(args["max-tokens"]) } : {}),
    providerOptions: { foreman: { metadata: { from: "examples/chat.mjs" } } },
    onError: ({ error }) => {
      if (!controller.signal.aborted) console.error(`\n[error] ${error instanceof Error ? error.message : error}`);
    },
  });
  let text = "";
  try {
    for await (const delta of result.textStream) {
      process.stdout.write(delta);
      text += delta;
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    process.off("SIGINT", stop);
  }
  process.stdout.write("\n");
  if (controller.signal.aborted) {
    console.error("[stopped: the job is canceled]");
    messages.pop();
    return null;
  }
  const usage = await result.usage;
  const jobId = (await result.providerMetadata)?.foreman?.jobId;
  console.error(`[job ${jobId}: ${usage.inputTokens ?? "?"} tokens in, ${usage.outputTokens ?? "?"} out]`);
  messages.push({ role: "assistant", content: text });
  return text;
}

if (positionals.length > 0) {
  await answer(positionals.join(" "));
} else {
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  console.error(
    `chatting with ${args.model} through ${process.env.FOREMAN_URL || "http://127.0.0.1:11435"}; empty line to quit`,
  );
  for (;;) {
    const question = (await terminal.question("> ")).trim();
    if (question === "") break;
    await answer(question);
  }
  terminal.close();
}
