import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A loopback Ollama target for the one thing the simulator cannot do: answer with tool calls. It sits in
 * front of the simulator and passes every request through, except a chat that offers tools and whose last
 * message is not a tool result: that one gets Ollama's streamed answer with `tool_calls` (a chunk with the
 * calls, then the final `done` chunk, as Ollama sends them). The chat that carries the tool result goes on
 * to the simulator, which answers with text.
 */
export interface ToolCallingTarget {
  url: string;
  /** Bodies of the chats answered here with tool calls, and of those passed on, in order. */
  readonly toolChats: Array<Record<string, unknown>>;
  readonly passedChats: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startToolCallingTarget(
  simUrl: string,
  call: { name: string; arguments: Record<string, unknown> },
): Promise<ToolCallingTarget> {
  const sim = new URL(simUrl);
  const toolChats: Array<Record<string, unknown>> = [];
  const passedChats: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    const pieces: Buffer[] = [];
    req.on("data", (piece: Buffer) => pieces.push(piece));
    req.on("end", () => {
      const body = Buffer.concat(pieces);
      if (req.method === "POST" && req.url === "/api/chat") {
        const chat = JSON.parse(body.toString("utf8")) as {
          model: string;
          tools?: unknown[];
          messages?: Array<{ role: string }>;
        };
        if (chat.tools?.length && chat.messages?.at(-1)?.role !== "tool") {
          toolChats.push(chat);
          answerWithToolCall(res, chat.model, call);
          return;
        }
        passedChats.push(chat);
      }
      const upstream = http.request(
        { host: sim.hostname, port: sim.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      res.on("close", () => upstream.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    toolChats,
    passedChats,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function answerWithToolCall(
  res: http.ServerResponse,
  model: string,
  call: { name: string; arguments: Record<string, unknown> },
): void {
  const created_at = new Date().toISOString();
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  const calls = [{ id: "call_e2e_1", function: { index: 0, name: call.name, arguments: call.arguments } }];
  res.write(
    `${JSON.stringify({ model, created_at, message: { role: "assistant", content: "", tool_calls: calls }, done: false })}\n`,
  );
  res.end(
    `${JSON.stringify({
      model,
      created_at,
      message: { role: "assistant", content: "" },
      done: true,
      done_reason: "stop",
      total_duration: 1_000_000,
      load_duration: 1_000,
      prompt_eval_count: 12,
      prompt_eval_duration: 100_000,
      eval_count: 6,
      eval_duration: 500_000,
    })}\n`,
  );
}
