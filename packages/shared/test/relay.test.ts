import fs from "node:fs";
import { expect } from "chai";
import { makeTempDir } from "../../../test/temp-dirs.js";
import { ensureRelay, followJobRelay, type RelayLine, RelayWriter } from "../src/relay.js";

const tempDir = () => makeTempDir("foreman-relay-");

async function collect(iterable: AsyncIterable<RelayLine[]>): Promise<RelayLine[]> {
  const out: RelayLine[] = [];
  for await (const batch of iterable) out.push(...batch);
  return out;
}

describe("relay", () => {
  it("follows a relay as the writer appends, from #start to #end, waking on the file's changes", async () => {
    const dir = tempDir();
    ensureRelay(dir, "job1");
    const following = collect(followJobRelay(dir, "job1", { pollMs: 10_000 }));
    const writer = RelayWriter.open(dir, "job1");
    writer.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
    writer.data('{"response":"héllo","done":false}');
    writer.data('{"response":"","done":true}');
    writer.end({ state: "done" });
    // A 10-second fallback poll: finishing well inside the test's timeout proves the watch woke it.
    const lines = await following;
    expect(lines.map((l) => l.kind)).to.deep.equal(["start", "data", "data", "end"]);
    expect(lines[1]).to.deep.equal({ kind: "data", line: '{"response":"héllo","done":false}' });
  });

  it("keeps a multi-byte character whole when it straddles two reads", async () => {
    const dir = tempDir();
    const file = ensureRelay(dir, "job2");
    const bytes = Buffer.from('{"response":"日本"}\n');
    fs.appendFileSync(file, bytes.subarray(0, 15)); // ends inside 日: the first read gets half of it
    const follower = followJobRelay(dir, "job2", { pollMs: 10_000 });
    const first = follower.next();
    // The follower's first read runs in microtasks; once they have drained it holds half a character.
    await new Promise((resolve) => setImmediate(resolve));
    fs.appendFileSync(file, bytes.subarray(15));
    expect((await first).value).to.deep.equal([{ kind: "data", line: '{"response":"日本"}' }]);
    await follower.return(undefined);
  });

  it("ends from the database's word when the writer died before its #end line", async () => {
    const dir = tempDir();
    const file = ensureRelay(dir, "job3");
    fs.appendFileSync(file, '{"done":false}\n');
    const lines = await collect(
      followJobRelay(dir, "job3", {
        pollMs: 20,
        jobs: { ending: () => ({ state: "failed", status: 500, error: "worker interrupted" }) },
      }),
    );
    expect(lines.at(-1)).to.deep.equal({
      kind: "end",
      end: { state: "failed", status: 500, error: "worker interrupted" },
    });
  });

  it("stops when its signal aborts, and releases the watch", async () => {
    const dir = tempDir();
    ensureRelay(dir, "job4");
    const controller = new AbortController();
    const following = collect(followJobRelay(dir, "job4", { pollMs: 10_000, signal: controller.signal }));
    controller.abort();
    expect(await following).to.deep.equal([]);
  });
});

describe("relay: a requeued job's replay", () => {
  it("starts at the last attempt when asked", async () => {
    const dir = tempDir();
    const first = RelayWriter.open(dir, "job5");
    first.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
    first.data('{"n":"attempt 1, cut short"}');
    first.close();
    const second = RelayWriter.open(dir, "job5");
    second.start({ attempt: 2, status: 200, content_type: "application/x-ndjson" });
    second.data('{"n":"attempt 2"}');
    second.end({ state: "done" });
    const lines = await collect(followJobRelay(dir, "job5", { pollMs: 10_000, fromLastAttempt: true }));
    expect(lines.filter((l) => l.kind === "data")).to.deep.equal([{ kind: "data", line: '{"n":"attempt 2"}' }]);
    const everything = await collect(followJobRelay(dir, "job5", { pollMs: 10_000 }));
    expect(everything.filter((l) => l.kind === "data")).to.have.length(2);
  });
});
