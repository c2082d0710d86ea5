import { expect } from "chai";
import { ForemanProtocolError } from "../src/errors.js";
import { parseNdjson } from "../src/ndjson.js";

const encoder = new TextEncoder();

/** A body that hands out exactly these pieces, one per read, and records whether it was canceled. */
function bodyOf(pieces: Uint8Array[]): { body: ReadableStream<Uint8Array>; canceled: () => boolean } {
  let index = 0;
  let canceled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = pieces[index++];
      if (piece === undefined) controller.close();
      else controller.enqueue(piece);
    },
    cancel() {
      canceled = true;
    },
  });
  return { body, canceled: () => canceled };
}

async function collect(pieces: Uint8Array[]): Promise<unknown[]> {
  const values: unknown[] = [];
  for await (const value of parseNdjson(bodyOf(pieces).body)) values.push(value);
  return values;
}

function splitAt(bytes: Uint8Array, ...cuts: number[]): Uint8Array[] {
  const bounds = [0, ...cuts, bytes.length];
  return bounds.slice(1).map((end, i) => bytes.slice(bounds[i], end));
}

// Two-, three- and four-byte UTF-8 characters, so cuts land inside each kind.
const CHUNKS = [
  { model: "llama3", message: { role: "assistant", content: "Héllo" }, done: false },
  { model: "llama3", message: { role: "assistant", content: " 世界 🦙" }, done: false },
  { model: "llama3", message: { role: "assistant", content: "" }, done: true, eval_count: 3 },
];
const NDJSON = encoder.encode(CHUNKS.map((c) => `${JSON.stringify(c)}\n`).join(""));

describe("parseNdjson", () => {
  it("parses one value per line when the whole body comes in one piece", async () => {
    expect(await collect([NDJSON])).to.deep.equal(CHUNKS);
  });

  it("gives the same values whatever byte the network cuts at, inside multi-byte characters too", async () => {
    for (let cut = 1; cut < NDJSON.length; cut++) {
      expect(await collect(splitAt(NDJSON, cut)), `cut at byte ${cut}`).to.deep.equal(CHUNKS);
    }
  });

  it("joins a line that arrives one byte at a time", async () => {
    const pieces = [...NDJSON].map((byte) => Uint8Array.of(byte));
    expect(await collect(pieces)).to.deep.equal(CHUNKS);
  });

  it("holds back each byte of a four-byte character cut into four pieces", async () => {
    const line = encoder.encode(`${JSON.stringify({ response: "🦙" })}\n`);
    const start = line.indexOf(0xf0);
    expect(start).to.be.greaterThan(0);
    expect(await collect(splitAt(line, start + 1, start + 2, start + 3))).to.deep.equal([{ response: "🦙" }]);
  });

  it("skips blank lines, ignores CRLF endings and keeps a last line without its newline", async () => {
    const text = '\n{"a":1}\r\n\r\n  \n{"b":2}\n{"c":3}';
    expect(await collect([encoder.encode(text)])).to.deep.equal([{ a: 1 }, { b: 2 }, { c: 3 }]);
  });

  it("ends with nothing for an empty body", async () => {
    expect(await collect([])).to.deep.equal([]);
  });

  it("throws a ForemanProtocolError quoting a line that is not JSON", async () => {
    const error = await collect([encoder.encode('{"a":1}\nnot json\n')]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(ForemanProtocolError);
    expect((error as Error).message).to.equal("invalid JSON line in NDJSON stream: not json");
  });

  it("cancels the body when the consumer stops early, and not when it reads to the end", async () => {
    const early = bodyOf([...NDJSON].map((byte) => Uint8Array.of(byte)));
    for await (const _value of parseNdjson(early.body)) break;
    expect(early.canceled()).to.equal(true);

    const full = bodyOf([NDJSON]);
    for await (const _value of parseNdjson(full.body)) {
      // read everything
    }
    expect(full.canceled()).to.equal(false);
  });
});
