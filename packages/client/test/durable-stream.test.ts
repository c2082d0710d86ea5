import { expect } from "chai";
import { ForemanClient } from "../src/client.js";
import { JobRestartedError, JobStreamError } from "../src/errors.js";
import type { ChatResponse, Job } from "../src/types.js";
import { FakeJobsServer, within } from "./fake-jobs-server.js";

const MESSAGES = [{ role: "user", content: "Why is the sky blue?" }];

const chunk = (content: string, done = false): ChatResponse => ({
  model: "llama3.2",
  created_at: "2025-01-01T00:00:01.000Z",
  message: { role: "assistant", content },
  done,
});

describe("ForemanClient: streams that survive a dropped connection", () => {
  let server: FakeJobsServer;
  let client: ForemanClient;

  beforeEach(async () => {
    server = await FakeJobsServer.start();
    client = new ForemanClient({ baseUrl: server.baseUrl, retry: { minDelayMs: 1, maxDelayMs: 5 } });
  });
  afterEach(async () => {
    await server.close();
  });

  const streamRequests = (id: string) => server.requestsTo("GET", `/jobs/${id}/stream`);
  const followed = (id: string, count: number) =>
    server.until(
      () => server.openStreams(id) === 1 && streamRequests(id).length === count,
      `stream #${count} of ${id}`,
    );

  /** Reads a stream to its end in the background, recording every chunk (and the error, if any). */
  function collect(chunks: AsyncIterable<ChatResponse>) {
    const got: string[] = [];
    const waiters: Array<{ count: number; resolve: () => void }> = [];
    const done = (async () => {
      for await (const c of chunks) {
        got.push(c.message.content);
        for (const w of waiters.filter((w) => got.length >= w.count)) w.resolve();
      }
    })();
    /** Resolves once `count` chunks have arrived. */
    const received = (count: number) =>
      within(
        new Promise<void>((resolve) => (got.length >= count ? resolve() : waiters.push({ count, resolve }))),
        3_000,
        `${count} chunk(s)`,
      );
    return { got, received, done: within(done, 5_000, "the stream to end") };
  }

  it("follow reattaches after each cut with after=<chunks received> and delivers every chunk once", async () => {
    const { id } = await client.submit({ model: "llama3.2", messages: MESSAGES });
    server.moveTo(id, "loading");
    server.moveTo(id, "working");
    server.appendChunk(id, chunk("a"));
    server.appendChunk(id, chunk("b"));
    const reading = collect(client.follow<ChatResponse>(id));
    await reading.received(2);
    expect(server.cutStreams(id)).to.equal(1);

    await followed(id, 2);
    server.appendChunk(id, chunk("c"));
    await reading.received(3);
    // Cut in the middle of a line: the half that arrived must not count.
    server.appendBytes(id, Buffer.from(JSON.stringify(chunk("d")).slice(0, 10)));
    server.cutStreams(id);
    await followed(id, 3);
    server.appendBytes(id, Buffer.from(`${JSON.stringify(chunk("d")).slice(10)}\n`));
    server.appendChunk(id, chunk("", true));
    server.complete(id, chunk("abcd", true));
    await reading.done;

    expect(reading.got).to.deep.equal(["a", "b", "c", "d", ""]);
    expect(streamRequests(id).map((r) => r.query)).to.deep.equal([
      { after: "0" },
      { after: "2", attempt: "1" },
      { after: "3", attempt: "1" },
    ]);
  });

  it("chatStream submits once with an Idempotency-Key, tells the job, and streams its chunks", async () => {
    const jobs: Job[] = [];
    // The submit's answer is lost: the keyed submit is retried and finds the job it made.
    server.injectFaults("lose-response");
    const reading = collect(
      client.chatStream("llama3.2", MESSAGES, { options: { temperature: 0 }, onJob: (job) => jobs.push(job) }),
    );
    await server.until(() => server.jobIds().length === 1 && server.openStreams(server.jobIds()[0]!) === 1, "a stream");
    const id = server.jobIds()[0]!;
    server.moveTo(id, "loading");
    server.moveTo(id, "working");
    server.appendChunk(id, chunk("blue"));
    server.appendChunk(id, chunk("", true));
    server.complete(id, chunk("blue", true));
    await reading.done;

    expect(reading.got).to.deep.equal(["blue", ""]);
    expect(jobs.map((j) => j.id)).to.deep.equal([id]);
    const submits = server.requestsTo("POST", "/jobs");
    expect(submits).to.have.length(2);
    expect(submits[0]!.headers["idempotency-key"]).to.be.a("string").and.equal(submits[1]!.headers["idempotency-key"]);
    expect(JSON.parse(submits[0]!.body)).to.deep.equal({
      options: { temperature: 0 },
      model: "llama3.2",
      messages: MESSAGES,
    });
    expect(server.requestsTo("POST", `/jobs/${id}/cancel`)).to.have.length(0);
  });

  it("a job that restarts after chunks were delivered ends the stream with a JobRestartedError, job left running", async () => {
    const jobs: Job[] = [];
    const reading = collect(client.chatStream("llama3.2", MESSAGES, { onJob: (job) => jobs.push(job) }));
    await server.until(() => jobs.length === 1 && server.openStreams(jobs[0]!.id) === 1, "a stream");
    const { id } = jobs[0]!;
    server.moveTo(id, "loading");
    server.moveTo(id, "working");
    server.appendChunk(id, chunk("half"));
    await reading.received(1);
    // The worker dies: the attempt is cut short and the job goes back to the queue to generate anew.
    server.restart(id);

    const error = await reading.done.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(JobRestartedError);
    expect(error).to.include({ jobId: id, attempt: 1, currentAttempt: 2, chunksReceived: 1 });
    expect(reading.got).to.deep.equal(["half"]);
    expect(server.requestsTo("POST", `/jobs/${id}/cancel`)).to.have.length(0);
  });

  it("a job that restarts before any chunk was delivered is simply followed into its new attempt", async () => {
    const { id } = await client.submit({ model: "llama3.2", messages: MESSAGES });
    server.moveTo(id, "loading");
    server.moveTo(id, "working");
    const reading = collect(client.follow<ChatResponse>(id));
    await followed(id, 1);
    server.restart(id);
    await followed(id, 2);
    server.moveTo(id, "loading");
    server.moveTo(id, "working");
    server.appendChunk(id, chunk("fresh", true));
    server.complete(id, chunk("fresh", true));
    await reading.done;
    expect(reading.got).to.deep.equal(["fresh"]);
  });

  it("aborting the signal cancels the job and rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const reason = new Error("user pressed stop");
    const jobs: Job[] = [];
    const reading = collect(
      client.chatStream("llama3.2", MESSAGES, { signal: controller.signal, onJob: (job) => jobs.push(job) }),
    );
    await server.until(() => jobs.length === 1 && server.openStreams(jobs[0]!.id) === 1, "a stream");
    controller.abort(reason);
    expect(await reading.done.catch((e: unknown) => e)).to.equal(reason);
    expect(server.job(jobs[0]!.id).state).to.equal("canceled");
  });

  it("leaving the loop early cancels the job; a job that fails does not get a cancel", async () => {
    const jobs: Job[] = [];
    const stream = client.chatStream("llama3.2", MESSAGES, { onJob: (job) => jobs.push(job) });
    const first = stream.next();
    await server.until(() => jobs.length === 1 && server.openStreams(jobs[0]!.id) === 1, "a stream");
    const { id } = jobs[0]!;
    server.moveTo(id, "loading");
    server.moveTo(id, "working");
    server.appendChunk(id, chunk("one"));
    expect((await within(first, 2_000, "the first chunk")).value).to.deep.equal(chunk("one"));
    await within(stream.return(undefined), 2_000, "leaving the loop");
    expect(server.job(id).cancel_requested).to.equal(true);

    const failing: Job[] = [];
    const reading = collect(client.chatStream("llama3.2", MESSAGES, { onJob: (job) => failing.push(job) }));
    await server.until(() => failing.length === 1 && server.openStreams(failing[0]!.id) === 1, "a second stream");
    server.fail(failing[0]!.id, "model not found");
    const error = await reading.done.catch((e: unknown) => e);
    expect(error).to.be.instanceOf(JobStreamError).and.include({ error: "model not found" });
    expect(server.requestsTo("POST", `/jobs/${failing[0]!.id}/cancel`)).to.have.length(0);
  });
});

describe("ForemanClient: list as pages", () => {
  let server: FakeJobsServer;
  let client: ForemanClient;
  beforeEach(async () => {
    server = await FakeJobsServer.start();
    client = new ForemanClient({ baseUrl: server.baseUrl });
  });
  afterEach(async () => {
    await server.close();
  });

  it("awaited it is the first page; iterated it is every page, each fetched when asked for", async () => {
    for (let i = 0; i < 5; i++) await client.submit({ model: "m", prompt: `p${i}` });
    const first = await client.list({ limit: 2 });
    expect(first.jobs).to.have.length(2);
    expect(first.nextCursor).to.be.a("string");

    const pages = client.list({ limit: 2 });
    const sizes: number[] = [];
    for await (const page of pages) {
      sizes.push(page.jobs.length);
      // The next page is not fetched before the loop asks for it.
      expect(server.requestsTo("GET", "/jobs").length).to.equal(1 + sizes.length);
    }
    expect(sizes).to.deep.equal([2, 2, 1]);

    // Awaited, then iterated: the first page is fetched once.
    const both = client.list({ limit: 4 });
    const before = server.requestsTo("GET", "/jobs").length;
    expect((await both).jobs).to.have.length(4);
    const all: string[] = [];
    for await (const page of both) all.push(...page.jobs.map((j) => j.id));
    expect(all).to.deep.equal(server.jobIds().reverse());
    expect(server.requestsTo("GET", "/jobs").length - before).to.equal(2);
  });

  it("takes a signal: an aborted listing rejects with its reason", async () => {
    const controller = new AbortController();
    const reason = new Error("enough");
    controller.abort(reason);
    expect(await client.list({ signal: controller.signal }).catch((e: unknown) => e)).to.equal(reason);
  });
});
