import { expect } from "chai";
import { parseSse, type SseMessage } from "../src/sse.js";

function bodyOf(pieces: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      controller.close();
    },
  });
}

async function parse(pieces: string[], options = {}): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const message of parseSse(bodyOf(pieces), options)) out.push(message);
  return out;
}

describe("parseSse", () => {
  it("dispatches on blank lines, joins data lines, keeps the last id and skips comments", async () => {
    const messages = await parse([
      ": keep-alive\n\n",
      'id: 7\nevent: job.queued\ndata: {"a":1}\n\n',
      "data: line one\ndata:line two\n\n",
      "event: target.down\nid: 9\ndata: x\n\n",
    ]);
    expect(messages).to.deep.equal([
      { id: "7", lastEventId: "7", event: "job.queued", data: '{"a":1}' },
      { id: undefined, lastEventId: "7", event: "message", data: "line one\nline two" },
      { id: "9", lastEventId: "9", event: "target.down", data: "x" },
    ]);
  });

  it("reads lines however the network cuts them, with LF, CR or CRLF endings", async () => {
    const messages = await parse(["id: 1\r", "\nevent: job.do", "ne\r\ndata: é", "\r\r", "data: z\n", "\n"]);
    expect(messages.map((m) => [m.id, m.event, m.data])).to.deep.equal([
      ["1", "job.done", "é"],
      [undefined, "message", "z"],
    ]);
  });

  it("reports retry and activity, drops an event without data or cut off at the end, and starts from a known id", async () => {
    const retries: number[] = [];
    let activity = 0;
    const messages = await parse(["retry: 2500\n\n", "event: empty\n\n", "data: kept\n\n", "data: cut"], {
      lastEventId: "41",
      onRetry: (ms: number) => retries.push(ms),
      onActivity: () => activity++,
    });
    expect(retries).to.deep.equal([2500]);
    expect(activity).to.equal(4);
    expect(messages).to.deep.equal([{ id: undefined, lastEventId: "41", event: "message", data: "kept" }]);
  });
});
