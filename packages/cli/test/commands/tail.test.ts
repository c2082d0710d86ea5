import { expect } from "chai";
import { runCli } from "../../src/cli.js";
import { type FakeOpsServer, jobView, sse, startFakeOpsServer } from "../fake-ops-server.js";
import { type MemoryIo, memoryIo } from "../memory-io.js";

const TOKEN = "tail-test-token-0123456789";
const JOB = "01JTAILJOB0000000000000000";

describe("foreman tail", () => {
  let server: FakeOpsServer;
  let started: MemoryIo[] = [];
  const env = () => ({ FOREMAN_URL: server.url, FOREMAN_API_TOKEN: TOKEN });
  const tail = (args: string[], io = memoryIo(env())) => {
    started.push(io);
    return { io, done: runCli(["tail", ...args], io) };
  };

  beforeEach(async () => {
    server = await startFakeOpsServer({ token: TOKEN });
  });
  afterEach(async () => {
    // A failed test leaves its tail following: stop it, or it reconnects forever.
    for (const io of started) io.interrupt();
    started = [];
    await server.close();
  });

  it("prints one line per transition and target event, passes the filters, and stops on Ctrl-C (exit 0)", async () => {
    const { io, done } = tail(["--model", "llama3.2"]);
    const stream = await server.eventStream(1);
    expect(server.seen.at(-1)?.url).to.equal("/events?model=llama3.2");
    expect(server.seen.at(-1)?.headers.accept).to.equal("text/event-stream");
    stream.write(sse({ id: 7, event: "job.queued", data: jobView({ id: JOB, state: "queued", position: 2 }) }));
    stream.write(": keep-alive\n\n");
    stream.write(
      sse({
        id: 8,
        event: "job.done",
        data: jobView({
          id: JOB,
          state: "done",
          loading_at: "2026-11-28T04:00:01.000Z",
          working_at: "2026-11-28T04:00:01.300Z",
          ended_at: "2026-11-28T04:00:03.500Z",
          metrics: { eval_count: 24, eval_duration: 200_000_000 },
        }),
      }),
    );
    stream.write(
      sse({
        event: "target.down",
        data: { at: "2026-11-28T04:00:04.000Z", url: "http://ollama:11434", error: "ECONNREFUSED" },
      }),
    );
    await io.stdout.waitFor("ECONNREFUSED");
    expect(io.interrupt()).to.equal(true);
    expect(await done).to.equal(0);
    const lines = io.stdout.text.trimEnd().split("\n");
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.000  ${JOB}  llama3\\.2:latest +queued +position 2$`),
    );
    expect(lines[1]).to.match(/ done +ran 2\.5 s · 24 tokens at 120\.0 tok\/s$/);
    expect(lines[2]).to.match(/^\d\d:\d\d:\d\d\.000 {2}target {20} {2}http:\/\/ollama:11434 +down +ECONNREFUSED$/);
    expect(io.stdout.text + io.stderr.text).to.not.include(TOKEN);
  });

  it("--json prints each event as one JSON line with its id, event name and data", async () => {
    const { io, done } = tail(["--json"]);
    const stream = await server.eventStream(1);
    stream.write(sse({ id: 3, event: "job.working", data: jobView({ id: JOB, state: "working" }) }));
    stream.write(sse({ event: "model.loaded", data: { at: "2026-11-28T04:00:00.000Z", model: "qwen3:8b" } }));
    await io.stdout.waitFor("model.loaded");
    io.interrupt();
    expect(await done).to.equal(0);
    const lines = io.stdout.text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).to.deep.include({ id: "3", event: "job.working" });
    expect(lines[0].data).to.include({ id: JOB, state: "working" });
    expect(lines[1]).to.deep.equal({
      id: null,
      event: "model.loaded",
      data: { at: "2026-11-28T04:00:00.000Z", model: "qwen3:8b" },
    });
  });

  it("reconnects after a lost stream with Last-Event-ID, at the server's retry delay", async () => {
    const { io, done } = tail([]);
    const first = await server.eventStream(1);
    expect(server.seen.at(-1)?.headers["last-event-id"]).to.equal(undefined);
    first.write(sse({ retry: 20, id: 41, event: "job.queued", data: jobView({ id: JOB, state: "queued" }) }));
    await io.stdout.waitFor("queued");
    first.end();
    const second = await server.eventStream(2);
    expect(server.seen.at(-1)?.headers["last-event-id"]).to.equal("41");
    expect(io.stderr.text).to.include("event stream lost (the server closed it); reconnecting in 20 ms");
    second.write(
      sse({
        id: 42,
        event: "job.loading",
        data: jobView({ id: JOB, state: "loading", loading_at: "2026-11-28T04:00:02.000Z" }),
      }),
    );
    await io.stdout.waitFor("loading");
    await io.stderr.waitFor("reconnected after event 41");
    io.interrupt();
    expect(await done).to.equal(0);
    expect(io.stdout.text).to.match(/ loading +waited 2\.0 s\n$/);
  });

  it("passes --job on, and drops events a gateway sends despite the filter", async () => {
    const { io, done } = tail(["--job", JOB]);
    const stream = await server.eventStream(1);
    expect(server.seen.at(-1)?.url).to.equal(`/events?job=${JOB}`);
    stream.write(
      sse({ id: 1, event: "job.queued", data: jobView({ id: "01JOTHERJOB000000000000000", state: "queued" }) }),
    );
    stream.write(sse({ event: "target.up", data: { at: "2026-11-28T04:00:00.000Z", url: "http://ollama:11434" } }));
    stream.write(sse({ id: 2, event: "job.queued", data: jobView({ id: JOB, state: "queued" }) }));
    await io.stdout.waitFor(JOB);
    io.interrupt();
    expect(await done).to.equal(0);
    expect(io.stdout.text.trimEnd().split("\n")).to.have.length(1);
  });

  it("--since resumes after that event id", async () => {
    const { io, done } = tail(["--since", "99"]);
    await server.eventStream(1);
    expect(server.seen.at(-1)?.headers["last-event-id"]).to.equal("99");
    io.interrupt();
    expect(await done).to.equal(0);
  });

  it("exits 3 when foreman cannot be reached at the start, 1 on a wrong token", async () => {
    const wrong = memoryIo({ FOREMAN_URL: server.url, FOREMAN_API_TOKEN: "wrong-token-wrong-token" });
    expect(await runCli(["tail"], wrong)).to.equal(1);
    expect(wrong.stderr.text).to.include("401").and.not.include("wrong-token-wrong-token");
    const url = server.url;
    await server.close();
    const io = memoryIo({ FOREMAN_URL: url });
    expect(await runCli(["tail"], io)).to.equal(3);
    expect(io.stderr.text).to.include(`cannot reach foreman at ${url}`);
    server = await startFakeOpsServer();
  });
});
