import { PassThrough } from "node:stream";
import { expect } from "chai";
import { createLogger } from "../src/logger.js";

function capture(format: "json" | "pretty", secrets: string[] = []) {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on("data", (chunk: Buffer) => lines.push(...chunk.toString().split("\n").filter(Boolean)));
  const logger = createLogger({ service: "worker", format, secrets, stream });
  return { logger, lines };
}

describe("logger", () => {
  it("writes one JSON object per line with service, level, timestamp and fields", async () => {
    const { logger, lines } = capture("json");
    logger.info("job state", { job_id: "01J", model: "llama3.2" });
    await new Promise((r) => setImmediate(r));
    expect(lines).to.have.length(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).to.include({
      level: "info",
      message: "job state",
      service: "worker",
      job_id: "01J",
      model: "llama3.2",
    });
    expect(entry.timestamp).to.be.a("string");
  });

  it("writes readable lines when asked", async () => {
    const { logger, lines } = capture("pretty");
    logger.warn("target down", { job_id: "01J" });
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).to.match(/^\S+ warn {2}\[worker\] target down job_id=01J$/);
  });

  it("escapes control characters in readable lines, so a caller's text cannot forge a line", async () => {
    const { logger, lines } = capture("pretty");
    const forged = "llama3\n2026-01-01T00:00:00.000Z info  [worker] job done job_id=01FAKE";
    logger.info("model switch\r\u2028", { from: forged, to: "x\u001b[31mred\u0085", note: { nested: "a\u0007b" } });
    await new Promise((r) => setImmediate(r));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include("model switch\\r\\u2028");
    expect(lines[0]).to.include("from=llama3\\n2026-01-01T00:00:00.000Z info  [worker] job done job_id=01FAKE");
    expect(lines[0]).to.include("to=x\\u001b[31mred\\u0085");
    expect(lines[0]).to.include('note={"nested":"a\\u0007b"}');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may remain.
    expect(lines[0]).to.not.match(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it("scrubs known secret values from messages and fields", async () => {
    const { logger, lines } = capture("json", ["s3cret-value"]);
    logger.error("upstream said s3cret-value is wrong", { header: "Bearer s3cret-value" });
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).to.not.include("s3cret-value");
    expect(lines[0]).to.include("[redacted]");
  });
});
