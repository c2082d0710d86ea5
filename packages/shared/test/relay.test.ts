import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { makeTempDir } from "../../../test/temp-dirs.js";
import {
  ensureRelay,
  followJobRelay,
  frameRelayData,
  frameRelayEnd,
  type RelayLine,
  RelayWriter,
  relayFraming,
  relayPath,
  relayTranscript,
} from "../src/relay.js";
import { openStore } from "../src/store/store.js";

const tempDir = () => makeTempDir("foreman-relay-");

async function collect(iterable: AsyncIterable<RelayLine[]>): Promise<RelayLine[]> {
  const out: RelayLine[] = [];
  for await (const batch of iterable) out.push(...batch);
  return out;
}

describe("relay", () => {
  describe("the #start line", () => {
    /** The texts `fs.writeSync` was given while `during` ran. */
    function writesDuring(during: () => void): string[] {
      const texts: string[] = [];
      const original = fs.writeSync;
      fs.writeSync = ((fd: number, data: string, ...rest: never[]) => {
        texts.push(String(data));
        return (original as (...args: unknown[]) => number)(fd, data, ...rest);
      }) as typeof fs.writeSync;
      try {
        during();
      } finally {
        fs.writeSync = original;
      }
      return texts;
    }

    it("goes out with the first data line in one write, so a follower wakes once for both", () => {
      const dir = tempDir();
      const writer = RelayWriter.open(dir, "s1");
      const writes = writesDuring(() => {
        writer.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
        writer.data('{"n":1}');
      });
      writer.close();
      expect(writes).to.deep.equal([
        '#start {"attempt":1,"status":200,"content_type":"application/x-ndjson"}\n{"n":1}\n',
      ]);
    });

    it("reaches the file by the end of the event-loop turn when no data follows", async () => {
      const dir = tempDir();
      const writer = RelayWriter.open(dir, "s2");
      writer.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
      await new Promise((resolve) => setImmediate(resolve));
      expect(fs.readFileSync(relayPath(dir, "s2"), "utf8")).to.equal(
        '#start {"attempt":1,"status":200,"content_type":"application/x-ndjson"}\n',
      );
      writer.close();
    });

    it("a failed write at the end of the turn keeps it for the next line, throwing nowhere", async () => {
      const dir = tempDir();
      const writer = RelayWriter.open(dir, "s5");
      const original = fs.writeSync;
      fs.writeSync = (() => {
        throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
      }) as typeof fs.writeSync;
      try {
        writer.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        fs.writeSync = original;
      }
      writer.data('{"n":1}');
      writer.close();
      expect(fs.readFileSync(relayPath(dir, "s5"), "utf8")).to.equal(
        '#start {"attempt":1,"status":200,"content_type":"application/x-ndjson"}\n{"n":1}\n',
      );
    });

    it("is written by close() and before an end line", () => {
      const dir = tempDir();
      const closed = RelayWriter.open(dir, "s3");
      closed.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
      closed.close();
      const ended = RelayWriter.open(dir, "s4");
      ended.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
      ended.end({ state: "canceled", status: 499 });
      expect(fs.readFileSync(relayPath(dir, "s3"), "utf8")).to.match(/^#start .*\n$/);
      expect(fs.readFileSync(relayPath(dir, "s4"), "utf8").split("\n")).to.deep.equal([
        '#start {"attempt":1,"status":200,"content_type":"application/x-ndjson"}',
        '#end {"state":"canceled","status":499}',
        "",
      ]);
    });
  });

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

  it("delivers a line written while the caller handles a batch on the watch, not the fallback poll", async () => {
    const dir = tempDir();
    ensureRelay(dir, "job5");
    const writer = RelayWriter.open(dir, "job5");
    writer.data('{"n":1}');
    const seen: string[] = [];
    // A one-minute poll, past the test's timeout: every line after the first must come from the watch.
    for await (const batch of followJobRelay(dir, "job5", { pollMs: 60_000 })) {
      for (const item of batch) seen.push(item.kind === "data" ? item.line : item.kind);
      // Appended after the follower's read and before it waits again, as a worker does between two chunks.
      if (seen.length < 3) writer.data(`{"n":${seen.length + 1}}`);
      else if (seen.length === 3) writer.end({ state: "done" });
    }
    expect(seen).to.deep.equal(['{"n":1}', '{"n":2}', '{"n":3}', "end"]);
  });

  it("holds the relay open only while data flows, and closes it when the follow ends or is aborted", async () => {
    const dir = tempDir();
    const file = ensureRelay(dir, "job6");
    const openHere = () =>
      fs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
        } catch {
          return false;
        }
      }).length;
    const controller = new AbortController();
    const follower = followJobRelay(dir, "job6", { pollMs: 60_000, signal: controller.signal });
    const first = follower.next();
    await new Promise((resolve) => setImmediate(resolve));
    expect(openHere(), "before any data: opened per read, not held").to.equal(0);
    fs.appendFileSync(file, '{"n":1}\n');
    expect((await first).value).to.deep.equal([{ kind: "data", line: '{"n":1}' }]);
    expect(openHere(), "data flows: held").to.equal(1);
    const next = follower.next();
    controller.abort();
    expect((await next).done).to.equal(true);
    expect(openHere(), "after the follow").to.equal(0);

    // A follower left waiting (a requeued job back in the queue) lets the file go after a quiet poll period.
    const stop = new AbortController();
    const waiting = followJobRelay(dir, "job6", { pollMs: 20, signal: stop.signal });
    try {
      expect((await waiting.next()).value).to.have.length(1);
      const more = waiting.next();
      expect(openHere(), "just read: held").to.equal(1);
      for (let i = 0; i < 200 && openHere() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(openHere(), "after a quiet poll period").to.equal(0);
      fs.appendFileSync(file, '{"n":2}\n');
      expect((await more).value).to.deep.equal([{ kind: "data", line: '{"n":2}' }]);
    } finally {
      // Aborted for a follower still waiting (a failed expectation above), returned for one at a yield.
      stop.abort();
      await waiting.return(undefined);
    }
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

describe("relay: framing for a caller", () => {
  it("is decided from the content type the target answered with", () => {
    expect(relayFraming("application/x-ndjson")).to.equal("ndjson");
    expect(relayFraming("application/x-ndjson; charset=utf-8")).to.equal("ndjson");
    expect(relayFraming("text/event-stream")).to.equal("sse");
    expect(relayFraming("text/event-stream; charset=utf-8")).to.equal("sse");
    expect(relayFraming("application/json; charset=utf-8")).to.equal("whole");
    expect(relayFraming("text/plain")).to.equal("whole");
  });

  it("frames a data line as an NDJSON line, an SSE event, or the body as it is", () => {
    const line = '{"response":"hi","done":false}';
    expect(frameRelayData("ndjson", line)).to.equal(`${line}\n`);
    expect(frameRelayData("sse", line)).to.equal(`data: ${line}\n\n`);
    expect(frameRelayData("whole", line)).to.equal(line);
  });

  it("closes a successful stream: SSE with [DONE], the others with nothing more", () => {
    expect(frameRelayEnd("sse", { state: "done" })).to.equal("data: [DONE]\n\n");
    expect(frameRelayEnd("ndjson", { state: "done" })).to.equal("");
    expect(frameRelayEnd("whole", { state: "done" })).to.equal("");
    expect(frameRelayEnd("whole", { state: "done", tail: "\n" }), "a whole answer's own tail").to.equal("\n");
    expect(frameRelayEnd("ndjson", { state: "done", tail: "\n" })).to.equal("");
  });

  it("closes a failed stream with an error in the stream's own shape", () => {
    const failed = { state: "failed" as const, status: 502, error: "target lost" };
    expect(frameRelayEnd("ndjson", failed)).to.equal('{"error":"target lost"}\n');
    expect(frameRelayEnd("sse", failed)).to.equal('data: {"error":{"message":"target lost","type":"api_error"}}\n\n');
    // A whole answer is written in one piece when complete, so a failed one sent no body (at most an early
    // answer's whitespace): the error object is the body.
    expect(frameRelayEnd("whole", failed)).to.equal('{"error":"target lost"}\n');
    expect(frameRelayEnd("ndjson", { state: "canceled" }), "no error text: the state says it").to.equal(
      '{"error":"job canceled"}\n',
    );
  });
});

describe("relay: the transcript", () => {
  it("holds the data lines of the last attempt only, without control lines", () => {
    const dir = tempDir();
    const first = RelayWriter.open(dir, "t1");
    first.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
    first.data('{"n":"attempt 1"}');
    first.close();
    const second = RelayWriter.open(dir, "t1");
    second.start({ attempt: 2, status: 200, content_type: "application/x-ndjson" });
    second.data('{"n":"attempt 2, é"}');
    second.data('{"n":"last","done":true}');
    second.end({ state: "done" });
    expect(relayTranscript(dir, "t1")).to.equal('{"n":"attempt 2, é"}\n{"n":"last","done":true}\n');
  });

  it("is the whole relay for a single attempt, and empty without a relay or data", () => {
    const dir = tempDir();
    const writer = RelayWriter.open(dir, "t2");
    writer.start({ attempt: 1, status: 200, content_type: "application/json" });
    writer.data('{"whole":true}');
    writer.end({ state: "done" });
    expect(relayTranscript(dir, "t2")).to.equal('{"whole":true}\n');
    expect(relayTranscript(dir, "missing")).to.equal("");
    const empty = RelayWriter.open(dir, "t3");
    empty.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
    empty.end({ state: "canceled", status: 499 });
    expect(relayTranscript(dir, "t3")).to.equal("");
  });
});

describe("relay: following a job with the store's word on its end", () => {
  it("ends the follow of a job that ended without a relay file (canceled while queued, file lost)", async () => {
    const dir = tempDir();
    const store = openStore({ dbPath: path.join(dir, "foreman.db") });
    try {
      const job = store.transitions.createJob({ kind: "chat", api: "ollama", mode: "sync", model: "m", request: {} });
      store.transitions.transition(job.id, "loading", { incrementAttempts: true });
      store.transitions.transition(job.id, "failed", { error: "worker error: disk full", errorStatus: 500 });
      const lines = await collect(followJobRelay(dir, job.id, { pollMs: 20, jobs: store.jobs }));
      expect(lines).to.deep.equal([
        { kind: "end", end: { state: "failed", status: 500, error: "worker error: disk full" } },
      ]);
      expect(fs.existsSync(relayPath(dir, job.id)), "made so the follow could watch it").to.equal(true);
    } finally {
      store.close();
    }
  });

  it("does not end the follow while the store says the job is still running", async () => {
    const dir = tempDir();
    const store = openStore({ dbPath: path.join(dir, "foreman.db") });
    try {
      const job = store.transitions.createJob({ kind: "chat", api: "ollama", mode: "sync", model: "m", request: {} });
      store.transitions.transition(job.id, "loading", { incrementAttempts: true });
      const writer = RelayWriter.open(dir, job.id);
      writer.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
      // The store is consulted on each fallback poll; after three polls that found the job running, the
      // writer goes on, and the follow must still be there to read it.
      let consulted = 0;
      let polledThrice!: () => void;
      const thrice = new Promise<void>((resolve) => {
        polledThrice = resolve;
      });
      const jobs = {
        ending(id: string) {
          if (++consulted === 3) polledThrice();
          return store.jobs.ending(id);
        },
      };
      const follower = followJobRelay(dir, job.id, { pollMs: 5, jobs });
      expect((await follower.next()).value).to.deep.equal([
        { kind: "start", start: { attempt: 1, status: 200, content_type: "application/x-ndjson" } },
      ]);
      const next = follower.next();
      await thrice;
      writer.data('{"done":true}');
      writer.end({ state: "done" });
      expect((await next).value).to.deep.equal([
        { kind: "data", line: '{"done":true}' },
        { kind: "end", end: { state: "done" } },
      ]);
      expect((await follower.next()).done, "the follow ends after the #end line").to.equal(true);
    } finally {
      store.close();
    }
  });
});
