import { Writable } from "node:stream";
import { expect } from "chai";
import { createLogger } from "../src/logger.js";
import type { JobRecord } from "../src/store/jobs.js";
import { logTransitions } from "../src/transition-log.js";

/** A stream that records each write it is handed: one entry per write, with the lines in it. */
function recordingStream() {
  const writes: string[][] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      writes.push([String(chunk)]);
      done();
    },
    writev(chunks, done) {
      writes.push(chunks.map((c) => String(c.chunk)));
      done();
    },
  });
  return { stream, writes };
}

const job = (id: string) =>
  ({ id, model: "m:latest", state: "queued", mode: "async", attempts: 0, createdAt: 1 }) as unknown as JobRecord;

describe("transition-log", () => {
  it("lets the lines logged in one tick leave in one write, before the next tick", async () => {
    const { stream, writes } = recordingStream();
    const log = logTransitions(createLogger({ service: "test", stream, level: "info" }), stream);
    log(job("a"), null, undefined);
    log(job("b"), null, undefined);
    log(job("c"), null, undefined);
    expect(writes).to.have.length(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).to.have.length(1);
    expect(writes[0]!.map((line) => JSON.parse(line).job_id)).to.deep.equal(["a", "b", "c"]);
    log(job("d"), null, undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).to.have.length(2);
    expect(JSON.parse(writes[1]![0]!)).to.include({ job_id: "d", message: "job queued", to: "queued" });
  });
});
