import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { type RelayFraming, RelayWriter, relayPath } from "@foreman/shared";
import { expect } from "chai";
import { ResultCollector } from "../src/result-collector.js";
import { pumpToRelay, readErrorBody, targetErrorText } from "../src/stream-pump.js";
import { harness } from "./harness.js";

describe("stream-pump", () => {
  const h = harness();
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-pump-"));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  /**
   * A target whose answer the test writes piece by piece over a real loopback socket: `answer` gets the
   * response with its headers sent, and a way to wait until the worker has received what was written.
   */
  async function target(contentType: string) {
    let answer!: (res: http.ServerResponse) => void;
    const answering = new Promise<http.ServerResponse>((resolve) => {
      answer = resolve;
    });
    const { url } = await h.loopback((_req, res) => {
      res.writeHead(200, { "content-type": contentType });
      res.flushHeaders();
      answer(res);
    });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${url}/api/chat`, { method: "POST", agent: false }, resolve);
      req.on("error", reject);
      req.end("{}");
    });
    const server = await answering;
    return { res, server };
  }

  /** Resolves once the worker's side has received another chunk of the answer. */
  const received = (res: http.IncomingMessage) => new Promise<void>((resolve) => res.once("data", () => resolve()));

  function pump(
    res: http.IncomingMessage,
    framing: RelayFraming,
    kind: "chat" | "generate" = "chat",
    api: "ollama" | "openai" = "ollama",
  ) {
    const relay = RelayWriter.open(dataDir, "job");
    const collector = new ResultCollector(kind, api);
    const done = pumpToRelay(res, framing, relay, collector);
    return { relay, collector, done };
  }
  const relayText = () => fs.readFileSync(relayPath(dataDir, "job"), "utf8");

  it("NDJSON: relays each line byte for byte as it completes, across reads, CRLF and blank lines included", async () => {
    const { res, server } = await target("application/x-ndjson");
    const { collector, done } = pump(res, "ndjson");
    const first = '{"message":{"content":"日本"},"done":false}';
    const bytes = Buffer.from(`${first}\n{"message":{"con`);
    // Split inside 日 (three bytes in UTF-8): the first read ends with half a character.
    server.write(bytes.subarray(0, 25));
    await received(res);
    expect(relayText(), "no line is complete yet").to.equal("");
    server.write(bytes.subarray(25));
    await received(res);
    expect(relayText(), "the first line, whole, before the answer ends").to.equal(`${first}\n`);
    server.write('tent":"!"},"done":false}\r\n\n');
    server.end('{"message":{"content":""},"done":true,"eval_count":2}');
    await done;
    expect(relayText()).to.equal(
      `${first}\n{"message":{"content":"!"},"done":false}\n{"message":{"content":""},"done":true,"eval_count":2}\n`,
    );
    expect(collector.done).to.equal(true);
    expect(collector.result()).to.deep.include({ message: { content: "日本!" }, done: true });
    expect(collector.metrics()).to.deep.equal({ eval_count: 2 });
  });

  it("SSE: relays the payload of each data event; comments and [DONE] stay out of the relay", async () => {
    const { res, server } = await target("text/event-stream");
    const { collector, done } = pump(res, "sse", "chat", "openai");
    const chunk = (content: string, finish: string | null = null) =>
      JSON.stringify({
        id: "c1",
        object: "chat.completion.chunk",
        choices: [{ delta: { content }, finish_reason: finish }],
      });
    server.write(`: keep-alive\n\ndata: ${chunk("a")}\n\n`);
    server.write(`data:${chunk("b", "stop")}\n\n`);
    server.end("data: [DONE]\n\n");
    await done;
    expect(relayText()).to.equal(`${chunk("a")}\n${chunk("b", "stop")}\n`);
    expect(collector.done, "[DONE] marks the end").to.equal(true);
    expect(collector.result()).to.deep.include({ content: "ab", finish_reason: "stop" });
  });

  it("whole: relays the one body (without its trailing newline, which it resolves with) when the answer ends", async () => {
    const { res, server } = await target("application/json; charset=utf-8");
    const { collector, done } = pump(res, "whole", "generate");
    const body = '{"response":"hello","done":true,"eval_count":1}';
    server.write(body.slice(0, 10));
    await received(res);
    expect(relayText(), "nothing before the body is whole").to.equal("");
    server.end(`${body.slice(10)}\n`);
    expect(await done, "the tail, for the end line").to.equal("\n");
    expect(relayText()).to.equal(`${body}\n`);
    expect(collector.result()).to.deep.equal(JSON.parse(body));
  });

  it("an answer that ends without its final chunk resolves, and the collector says it is not done", async () => {
    const { res, server } = await target("application/x-ndjson");
    const { collector, done } = pump(res, "ndjson");
    server.end('{"message":{"content":"half"},"done":false}\n');
    await done;
    expect(collector.done).to.equal(false);
  });

  it("a connection that breaks mid-answer rejects; the lines before it are in the relay", async () => {
    const { res, server } = await target("application/x-ndjson");
    const { done } = pump(res, "ndjson");
    server.write('{"message":{"content":"a"},"done":false}\n{"message":');
    await received(res);
    server.socket!.destroy();
    const err = await done.then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(Error);
    expect(relayText()).to.equal('{"message":{"content":"a"},"done":false}\n');
  });

  it("an NDJSON chunk that is not JSON rejects, and never reaches the relay", async () => {
    const { res, server } = await target("application/x-ndjson");
    const { done } = pump(res, "ndjson");
    server.write('{"message":{"content":"a"},"done":false}\n<html>proxy error</html>\n');
    const err = await done.then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(SyntaxError);
    expect(relayText()).to.equal('{"message":{"content":"a"},"done":false}\n');
    expect(res.destroyed, "the target's answer is let go").to.equal(true);
  });

  it("a whole body that is not JSON rejects, and never reaches the relay", async () => {
    // A proxy in front of the target answering 200 with a page of its own.
    const { res, server } = await target("text/html");
    const { done } = pump(res, "whole", "generate");
    server.end("<html>please log in</html>\n");
    const err = await done.then(
      () => null,
      (e: Error) => e,
    );
    expect(err).to.be.instanceOf(SyntaxError);
    expect(relayText(), "a caller following the relay must not be sent the page as the answer").to.equal("");
  });

  it("a relay that cannot be written rejects instead of throwing out of the HTTP parser", async () => {
    const { res, server } = await target("application/x-ndjson");
    const { relay, done } = pump(res, "ndjson");
    relay.close();
    server.write('{"message":{"content":"a"},"done":false}\n');
    const err = await done.then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/is closed/);
  });

  describe("the target's error answers", () => {
    it("readErrorBody reads the whole (small) body", async () => {
      const { url } = await h.loopback((_req, res) => {
        res.writeHead(404, { "content-type": "application/json" });
        res.write('{"error":"model ');
        res.end("'x' not found\"}");
      });
      const res = await new Promise<http.IncomingMessage>((resolve) =>
        http.request(`${url}/api/chat`, { method: "POST", agent: false }, resolve).end(),
      );
      expect(await readErrorBody(res)).to.equal(`{"error":"model 'x' not found"}`);
    });

    it("readErrorBody keeps at most `limit` characters of a large body", async () => {
      const { url } = await h.loopback((_req, res) => {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("x".repeat(100_000));
      });
      const res = await new Promise<http.IncomingMessage>((resolve) =>
        http.request(`${url}/api/chat`, { method: "POST", agent: false }, resolve).end(),
      );
      expect((await readErrorBody(res, 1000)).length).to.be.at.most(1000);
    });

    it("targetErrorText takes Ollama's and OpenAI's error shapes, else the text, else the status", () => {
      expect(targetErrorText(`{"error":"model 'x' not found"}`, 404)).to.equal("model 'x' not found");
      expect(targetErrorText('{"error":{"message":"bad request","type":"invalid_request_error"}}', 400)).to.equal(
        "bad request",
      );
      expect(targetErrorText("  upstream timed out\n", 504)).to.equal("upstream timed out");
      expect(targetErrorText('{"detail":"nope"}', 500)).to.equal('{"detail":"nope"}');
      expect(targetErrorText("", 503)).to.equal("target answered 503");
    });
  });
});
