import { expect } from "chai";
import { ForemanClient, type ForemanClientOptions } from "../src/client.js";
import {
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  JobFailedError,
  JobStreamError,
  JobTimeoutError,
} from "../src/errors.js";
import type { ChatResponse, GenerateResponse, JobChunk, JobRequest } from "../src/types.js";
import { FakeJobsServer, within } from "./fake-jobs-server.js";

const TOKEN = "tok_9f8e7d6c5b4a";
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const CHAT: JobRequest = { model: "llama3.2", messages: [{ role: "user", content: "Why is the sky blue?" }] };
const GENERATE: JobRequest = { model: "qwen3:8b", prompt: "Write a haiku" };

const chatResult = (content: string): ChatResponse => ({
  model: "llama3.2",
  created_at: "2025-01-01T00:00:01.000Z",
  message: { role: "assistant", content },
  done: true,
  done_reason: "stop",
  total_duration: 1_200_000_000,
  load_duration: 400_000_000,
  prompt_eval_count: 12,
  prompt_eval_duration: 100_000_000,
  eval_count: 40,
  eval_duration: 700_000_000,
});

const chatChunk = (content: string, done = false): ChatResponse => ({
  model: "llama3.2",
  created_at: "2025-01-01T00:00:01.000Z",
  message: { role: "assistant", content },
  done,
});

/** Rejection of `promise`, bounded in time; a resolution fails the test. */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  return await within(
    promise.then(
      (value) => {
        throw new Error(`expected ${what} to fail, it resolved with ${JSON.stringify(value)}`);
      },
      (error: unknown) => error,
    ),
    5_000,
    what,
  );
}

/**
 * A fetch that cuts every response body into `size`-byte pieces: the client sees the worst a network can
 * do to an NDJSON stream, through a real socket, deterministically.
 */
function rechunkingFetch(size: number, calls: { count: number }): typeof fetch {
  return async (input, init) => {
    calls.count++;
    const response = await fetch(input, init);
    if (!response.body) return response;
    const source = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await source.read();
        if (done) {
          controller.close();
          return;
        }
        for (let i = 0; i < value.length; i += size) controller.enqueue(value.slice(i, i + size));
      },
      cancel: (reason) => source.cancel(reason),
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

describe("ForemanClient", () => {
  let server: FakeJobsServer;
  let client: ForemanClient;

  const makeClient = (options: Partial<ForemanClientOptions> = {}) =>
    new ForemanClient({ baseUrl: server.baseUrl, retry: { minDelayMs: 1, maxDelayMs: 5 }, ...options });

  beforeEach(async () => {
    server = await FakeJobsServer.start();
    client = makeClient();
  });

  afterEach(async () => {
    await server.close();
  });

  /** Resolves once the client holds a long poll on the job (so the test can move it along). */
  const pollParked = (id: string, count = 1) =>
    server.until(() => server.parkedPolls(id) === count, `${count} long poll(s) on ${id}`);

  const onlyJobPolled = () =>
    server.until(
      () => server.jobIds().length === 1 && server.parkedPolls(server.jobIds()[0]!) === 1,
      "the one job to be long-polled",
    );

  describe("submit", () => {
    it("queues a chat job and answers with the Job", async () => {
      const job = await client.submit({ ...CHAT, options: { temperature: 0 }, metadata: { batch: "b1" } });
      expect(job.id).to.match(ULID);
      expect(job).to.deep.include({
        kind: "chat",
        model: "llama3.2",
        state: "queued",
        attempts: 0,
        error: null,
        metadata: { batch: "b1" },
        result: null,
        artifacts: [],
        webhook: null,
      });
      const [request] = server.requestsTo("POST", "/jobs");
      expect(JSON.parse(request!.body)).to.deep.equal({
        ...CHAT,
        options: { temperature: 0 },
        metadata: { batch: "b1" },
      });
      expect(request!.headers["content-type"]).to.equal("application/json");
      expect(request!.headers["idempotency-key"]).to.equal(undefined);
    });

    it("queues a generate job behind it, with its webhook echoed back", async () => {
      await client.submit(CHAT);
      const job = await client.submit({
        ...GENERATE,
        webhook: { url: "https://hooks.example/foreman", secret: "whsec_abc", events: ["job.done", "job.failed"] },
      });
      expect(job).to.deep.include({ kind: "generate", model: "qwen3:8b" });
      // Like the gateway, the 202 leaves the queue position out; GET has it.
      expect(job.position).to.equal(undefined);
      expect((await client.get(job.id)).position).to.equal(2);
      expect(job.webhook).to.deep.equal({
        url: "https://hooks.example/foreman",
        events: ["job.done", "job.failed"],
        deliveries: [],
      });
    });

    it("sends the Idempotency-Key: the same key and body give the first job, another body a 409", async () => {
      const first = await client.submit(CHAT, { idempotencyKey: "batch-7/item-3" });
      const again = await client.submit(CHAT, { idempotencyKey: "batch-7/item-3" });
      expect(again.id).to.equal(first.id);
      expect(server.jobIds()).to.deep.equal([first.id]);
      expect(server.requestsTo("POST", "/jobs").map((r) => r.headers["idempotency-key"])).to.deep.equal([
        "batch-7/item-3",
        "batch-7/item-3",
      ]);

      const conflict = await rejection(client.submit(GENERATE, { idempotencyKey: "batch-7/item-3" }), "conflict");
      expect(conflict).to.be.instanceOf(ForemanHttpError);
      expect(conflict).to.include({
        status: 409,
        message: 'Idempotency-Key "batch-7/item-3" was already used with a different request body',
      });
    });

    it("passes validation errors through with the server's text naming the field", async () => {
      const neither = await rejection(client.submit({ model: "m" } as JobRequest), "a job with no input");
      expect(neither).to.include({
        status: 400,
        error: "one of messages (chat) or prompt (generate) is required",
      });
      const badHook = await rejection(
        client.submit({ ...GENERATE, webhook: { url: "ftp://hooks.example" } }),
        "a job with an ftp webhook",
      );
      expect(badHook).to.include({
        status: 400,
        message: "webhook.url must be a valid uri with a scheme matching the http|https pattern",
      });
      const both = await rejection(client.submit({ ...CHAT, prompt: "also" } as unknown as JobRequest), "both inputs");
      expect(both).to.include({
        status: 400,
        error: "send exactly one of messages (chat) or prompt (generate), not both",
      });
    });

    it("retries a keyed submit whose answer was lost, and gets the job it made, not a second one", async () => {
      server.injectFaults("lose-response");
      const job = await within(client.submit(CHAT, { idempotencyKey: "k-lost" }), 5_000, "the keyed submit");
      expect(server.jobIds()).to.deep.equal([job.id]);
      expect(server.requestsTo("POST", "/jobs")).to.have.length(2);
    });

    it("does not retry a submit without a key, which could make a second job", async () => {
      server.injectFaults("drop");
      const error = await rejection(client.submit(CHAT), "an unkeyed submit on a dropped connection");
      expect(error).to.be.instanceOf(ForemanNetworkError);
      expect(server.requestsTo("POST", "/jobs")).to.have.length(1);
    });

    it("refuses an Idempotency-Key that cannot travel as a header", async () => {
      for (const key of ["", " padded", "line\nbreak", "é"]) {
        const error = await rejection(client.submit(CHAT, { idempotencyKey: key }), `key ${JSON.stringify(key)}`);
        expect(error).to.be.instanceOf(TypeError);
      }
      expect(server.requests).to.have.length(0);
    });
  });

  describe("Authorization", () => {
    it("sends the bearer token on every request of every method", async () => {
      await server.close();
      server = await FakeJobsServer.start({ token: TOKEN });
      client = makeClient({ token: TOKEN });

      const job = await client.submit(GENERATE);
      await client.get(job.id);
      await client.list();
      server.addArtifact(job.id, "notes.txt", "text/plain", Buffer.from("hi"));
      await client.artifact(job.id, "notes.txt");
      server.complete(job.id, { model: "qwen3:8b", response: "ok", done: true });
      for await (const _chunk of client.stream(job.id)) {
        // replay only
      }
      await client.wait(job.id);
      const second = await client.submit(GENERATE);
      await client.cancel(second.id);

      expect(server.requests.length).to.be.greaterThan(7);
      for (const request of server.requests) {
        expect(request.headers.authorization, `${request.method} ${request.path}`).to.equal(`Bearer ${TOKEN}`);
      }
    });

    it("maps a wrong token to a 401 ForemanHttpError that never shows the token", async () => {
      await server.close();
      server = await FakeJobsServer.start({ token: TOKEN });
      const wrong = "tok_wrong_but_secret";
      const error = await rejection(makeClient({ token: wrong }).list(), "a list with the wrong token");
      expect(error).to.be.instanceOf(ForemanHttpError);
      expect(error).to.include({
        status: 401,
        error: "unauthorized: missing or wrong bearer token (Authorization: Bearer <FOREMAN_API_TOKEN>)",
      });
      const shown = `${String(error)} ${(error as Error).stack} ${JSON.stringify(error)}`;
      expect(shown).not.to.include(wrong);
      expect(shown).not.to.include(TOKEN);
    });
  });

  describe("get", () => {
    it("answers with the job, and a 404 with the server's text for an unknown id", async () => {
      const submitted = await client.submit(CHAT);
      server.moveTo(submitted.id, "loading");
      const job = await client.get(submitted.id);
      expect(job).to.deep.include({ id: submitted.id, state: "loading", attempts: 1 });
      expect(job.loading_at).to.be.a("string");
      expect(job.position).to.equal(undefined);

      const missing = await rejection(client.get("01JNOTAJOB0000000000000000"), "an unknown job");
      expect(missing).to.include({ status: 404, error: "job 01JNOTAJOB0000000000000000 not found" });
    });

    it("long-polls with wait=, capped at 60 and rounded up to whole seconds", async () => {
      const { id } = await client.submit(CHAT);
      const held = client.get(id, { waitSeconds: 75 });
      await pollParked(id);
      server.complete(id, chatResult("Rayleigh scattering."));
      const job = await within(held, 2_000, "the long poll");
      expect(job.state).to.equal("done");
      expect(job.result).to.deep.equal(chatResult("Rayleigh scattering."));

      await client.get(id, { waitSeconds: 2.5 });
      expect(server.requestsTo("GET", `/jobs/${id}`).map((r) => r.query.wait)).to.deep.equal(["60", "3"]);
      await rejection(client.get(id, { waitSeconds: -1 }), "a negative wait");
      await rejection(client.get(""), "an empty id");
    });

    it("encodes the id into the path", async () => {
      await rejection(client.get("../jobs?x=1"), "an id with URL syntax");
      expect(server.requests.at(-1)?.path).to.equal("/jobs/..%2Fjobs%3Fx%3D1");
    });
  });

  describe("list and listAll", () => {
    it("lists newest first with the filters as query parameters", async () => {
      const a = await client.submit(CHAT);
      const b = await client.submit(GENERATE);
      const c = await client.submit({ ...CHAT, metadata: { n: 3 } });
      server.complete(b.id, { model: "qwen3:8b", response: "ok", done: true });

      const all = await client.list();
      expect(all.jobs.map((j) => j.id)).to.deep.equal([c.id, b.id, a.id]);
      expect(all.nextCursor).to.equal(null);

      const queuedChats = await client.list({ state: "queued", model: "llama3.2", limit: 1 });
      expect(queuedChats.jobs.map((j) => j.id)).to.deep.equal([c.id]);
      expect(queuedChats.nextCursor).to.be.a("string");
      expect(server.requests.at(-1)?.query).to.deep.equal({ state: "queued", model: "llama3.2", limit: "1" });

      const next = await client.list({ state: "queued", model: "llama3.2", limit: 1, cursor: queuedChats.nextCursor! });
      expect(next.jobs.map((j) => j.id)).to.deep.equal([a.id]);
      expect(next.nextCursor).to.equal(null);
    });

    it("passes a 400 for a bad limit through", async () => {
      const error = await rejection(client.list({ limit: 0 }), "limit 0");
      expect(error).to.include({ status: 400, message: "limit must be an integer from 1 to 100" });
    });

    it("listAll follows the cursors to the last page", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await client.submit({ ...GENERATE, prompt: `p${i}` })).id);
      const seen: string[] = [];
      for await (const job of client.listAll({ model: "qwen3:8b", limit: 2 })) seen.push(job.id);
      expect(seen).to.deep.equal([...ids].reverse());
      const pages = server.requestsTo("GET", "/jobs").filter((r) => r.path === "/jobs");
      expect(pages).to.have.length(3);
      expect(pages[0]!.query.cursor).to.equal(undefined);
      expect(pages[1]!.query.cursor).to.be.a("string");
      expect(pages[2]!.query.cursor).to.be.a("string").and.not.equal(pages[1]!.query.cursor);
      expect(pages.every((p) => p.query.limit === "2" && p.query.model === "qwen3:8b")).to.equal(true);
    });

    it("listAll stops with a ForemanProtocolError when a server hands back the same cursor", async () => {
      const looping: typeof fetch = async () =>
        new Response(JSON.stringify({ jobs: [], next_cursor: "again" }), {
          headers: { "content-type": "application/json" },
        });
      const stuck = new ForemanClient({ baseUrl: "http://127.0.0.1:9", fetch: looping });
      const drain = async () => {
        for await (const _job of stuck.listAll()) {
          // nothing
        }
      };
      expect(await rejection(drain(), "a looping cursor")).to.be.instanceOf(ForemanProtocolError);
    });
  });

  describe("cancel", () => {
    it("cancels a queued job at once", async () => {
      const { id } = await client.submit(CHAT);
      const job = await client.cancel(id);
      expect(job.state).to.equal("canceled");
      expect(job.ended_at).to.be.a("string");
      expect(server.requests.at(-1)).to.deep.include({ method: "POST", path: `/jobs/${id}/cancel` });
    });

    it("marks a running job cancel_requested until the worker has stopped it", async () => {
      const { id } = await client.submit(CHAT);
      server.moveTo(id, "loading");
      server.moveTo(id, "working");
      const requested = await client.cancel(id);
      expect(requested).to.deep.include({ state: "working", cancel_requested: true });
      const waiting = client.wait(id);
      await pollParked(id);
      server.finishCancel(id);
      expect((await within(waiting, 2_000, "the canceled job")).state).to.equal("canceled");
    });

    it("answers 409 for a job that has already ended and 404 for an unknown one", async () => {
      const { id } = await client.submit(CHAT);
      server.complete(id, chatResult("done"));
      const ended = await rejection(client.cancel(id), "cancel of an ended job");
      expect(ended).to.include({ status: 409, error: `job ${id} has already ended (done)`, jobId: id });
      const unknown = await rejection(client.cancel("nope"), "cancel of an unknown job");
      expect(unknown).to.include({ status: 404, error: "job nope not found" });
    });
  });

  describe("artifacts", () => {
    it("downloads bytes with their content type, as text and as JSON", async () => {
      const { id } = await client.submit(CHAT);
      const transcript = `${JSON.stringify(chatChunk("Grüße 🦙"))}\n`;
      server.addArtifact(id, "transcript.ndjson", "application/x-ndjson", Buffer.from(transcript));
      server.addArtifact(id, "raw.bin", "application/octet-stream", Uint8Array.of(0, 159, 255));
      server.complete(id, chatResult("ok"));

      const raw = await client.artifact(id, "raw.bin");
      expect(raw.contentType).to.equal("application/octet-stream");
      expect([...raw.bytes]).to.deep.equal([0, 159, 255]);
      expect(await client.artifactText(id, "transcript.ndjson")).to.equal(transcript);
      expect(await client.artifactJson(id, "result.json")).to.deep.equal(chatResult("ok"));

      const job = await client.get(id);
      expect(job.artifacts.map((a) => a.name)).to.have.members(["transcript.ndjson", "raw.bin", "result.json"]);
      expect(job.artifacts.find((a) => a.name === "raw.bin")).to.deep.equal({
        name: "raw.bin",
        content_type: "application/octet-stream",
        size: 3,
        url: `/jobs/${id}/artifacts/raw.bin`,
      });
    });

    it("encodes the artifact name, and passes the server's 400 and 404 through", async () => {
      const { id } = await client.submit(CHAT);
      server.addArtifact(id, "notes-1.txt", "text/plain; charset=utf-8", Buffer.from("half"));
      expect(await client.artifactText(id, "notes-1.txt")).to.equal("half");
      expect(await rejection(client.artifactJson(id, "notes-1.txt"), "non-JSON")).to.be.instanceOf(
        ForemanProtocolError,
      );

      const unsafe = await rejection(client.artifact(id, "../notes 1/2.txt"), "an unsafe artifact name");
      expect(server.requests.at(-1)?.path).to.equal(`/jobs/${id}/artifacts/..%2Fnotes%201%2F2.txt`);
      expect(unsafe).to.include({ status: 400, error: 'artifact name "../notes 1/2.txt" is not allowed' });
      const missing = await rejection(client.artifact(id, "nope.json"), "an unknown artifact");
      expect(missing).to.include({ status: 404, error: `job ${id} has no artifact nope.json`, jobId: id });
    });
  });

  describe("stream", () => {
    it("replays the chunks from the start, then follows the job until it ends", async () => {
      const { id } = await client.submit(CHAT);
      server.moveTo(id, "loading");
      server.moveTo(id, "working");
      server.appendChunk(id, chatChunk("The "));
      server.appendChunk(id, chatChunk("sky "));

      const chunks = client.stream(id)[Symbol.asyncIterator]();
      const next = () => within(chunks.next(), 2_000, "the next chunk");
      expect((await next()).value).to.deep.equal(chatChunk("The "));
      expect((await next()).value).to.deep.equal(chatChunk("sky "));

      const live = next();
      server.appendChunk(id, chatChunk("scatters."));
      expect((await live).value).to.deep.equal(chatChunk("scatters."));

      const last = next();
      server.appendChunk(id, chatChunk("", true));
      server.complete(id, chatResult("The sky scatters."));
      expect((await last).value).to.deep.equal(chatChunk("", true));
      expect(await next()).to.deep.equal({ done: true, value: undefined });
      expect(server.requests.at(-1)?.headers.accept).to.equal("application/x-ndjson");
    });

    it("parses NDJSON cut into 1-byte pieces on the wire, inside multi-byte characters too", async () => {
      const calls = { count: 0 };
      const chopped = makeClient({ fetch: rechunkingFetch(1, calls) });
      const { id } = await chopped.submit(GENERATE);
      const expected: GenerateResponse[] = ["Kyō ", "no ", "sora — ", "青い 🦙", ""].map((response, i, all) => ({
        model: "qwen3:8b",
        created_at: "2025-01-01T00:00:01.000Z",
        response,
        done: i === all.length - 1,
      }));
      // Two lines in one write, and one line across two writes cut inside "青".
      const wire = Buffer.from(expected.map((c) => `${JSON.stringify(c)}\n`).join(""));
      const cut = wire.indexOf(Buffer.from("青")) + 1;
      server.appendBytes(id, wire.subarray(0, cut));
      server.appendBytes(id, wire.subarray(cut));
      server.complete(id, { ...expected.at(-1)!, response: "Kyō no sora — 青い 🦙" });

      const got: JobChunk[] = [];
      for await (const chunk of chopped.stream<GenerateResponse>(id)) got.push(chunk);
      expect(got).to.deep.equal(expected);
      expect(calls.count).to.equal(2);
    });

    it("throws a JobStreamError with the server's text when the job fails mid-way", async () => {
      const { id } = await client.submit(CHAT);
      server.moveTo(id, "loading");
      server.moveTo(id, "working");
      server.appendChunk(id, chatChunk("Half an ans"));
      const got: JobChunk[] = [];
      const reading = (async () => {
        for await (const chunk of client.stream(id)) {
          got.push(chunk);
          if (got.length === 1) server.fail(id, "target lost mid-generation (attempt 3 of 3)");
        }
      })();
      const error = await rejection(reading, "a stream of a failing job");
      expect(error).to.be.instanceOf(JobStreamError);
      expect(error).to.include({ jobId: id, error: "target lost mid-generation (attempt 3 of 3)" });
      expect((error as Error).message).to.equal("target lost mid-generation (attempt 3 of 3)");
      expect(got).to.deep.equal([chatChunk("Half an ans")]);
    });

    it("ends a canceled job's stream with its error line, as a JobStreamError", async () => {
      const { id } = await client.submit(CHAT);
      const reading = (async () => {
        for await (const _chunk of client.stream(id)) {
          // a queued job has no chunks
        }
      })();
      const outcome = rejection(reading, "a stream of a canceled job");
      await server.until(() => server.openStreams(id) === 1, "the stream to be followed");
      await client.cancel(id);
      const error = await outcome;
      expect(error).to.be.instanceOf(JobStreamError);
      expect(error).to.include({ jobId: id, error: "job canceled" });
    });

    it("stops on the caller's abort signal and closes the connection", async () => {
      const { id } = await client.submit(CHAT);
      server.appendChunk(id, chatChunk("one"));
      const controller = new AbortController();
      const reason = new Error("user pressed stop");
      const reading = (async () => {
        for await (const _chunk of client.stream(id, { signal: controller.signal })) controller.abort(reason);
      })();
      expect(await rejection(reading, "an aborted stream")).to.equal(reason);
      await server.until(() => server.openStreams(id) === 0, "the stream connection to close");
    });

    it("closes the connection when the consumer stops reading early", async () => {
      const { id } = await client.submit(CHAT);
      server.appendChunk(id, chatChunk("one"));
      server.appendChunk(id, chatChunk("two"));
      for await (const _chunk of client.stream(id)) break;
      await server.until(() => server.openStreams(id) === 0, "the stream connection to close");
    });

    it("throws the 404 of an unknown job on the first read", async () => {
      const stream = client.stream("missing")[Symbol.asyncIterator]();
      expect(await rejection(stream.next(), "a stream of an unknown job")).to.include({
        status: 404,
        error: "job missing not found",
      });
    });
  });

  describe("wait", () => {
    it("loops 60-second long polls until the job ends, whatever it ends as", async () => {
      const { id } = await client.submit(CHAT);
      const waiting = client.wait(id);
      await pollParked(id);
      server.moveTo(id, "loading");
      server.releasePolls(id); // the first poll's wait ran out with the job still loading
      await pollParked(id);
      server.moveTo(id, "working");
      server.releasePolls(id);
      await pollParked(id);
      server.fail(id, 'model "llama3.2" not found, try pulling it first');

      const job = await within(waiting, 2_000, "wait");
      expect(job).to.deep.include({ state: "failed", error: 'model "llama3.2" not found, try pulling it first' });
      const polls = server.requestsTo("GET", `/jobs/${id}`);
      expect(polls.map((r) => r.query.wait)).to.deep.equal(["60", "60", "60"]);
    });

    it("answers at once for a job that has already ended", async () => {
      const { id } = await client.submit(CHAT);
      server.complete(id, chatResult("ok"));
      expect((await within(client.wait(id), 2_000, "wait")).state).to.equal("done");
    });

    it("gives up after timeoutMs with a JobTimeoutError carrying the job as last seen", async () => {
      const { id } = await client.submit(CHAT);
      const waiting = client.wait(id, { timeoutMs: 400 });
      await pollParked(id);
      server.releasePolls(id);
      const error = await rejection(waiting, "a wait that times out");
      expect(error).to.be.instanceOf(JobTimeoutError);
      expect(error).to.deep.include({ jobId: id, timeoutMs: 400 });
      expect((error as JobTimeoutError).job?.state).to.equal("queued");
      expect(server.requestsTo("GET", `/jobs/${id}`)[0]!.query.wait).to.equal("1");
      await server.until(() => server.parkedPolls(id) === 0, "the abandoned poll to close");
    });

    it("rides out a dropped connection and a 503 between polls", async () => {
      const { id } = await client.submit(CHAT);
      server.injectFaults("drop", { status: 503, body: JSON.stringify({ error: "database is locked" }) });
      const waiting = client.wait(id);
      await pollParked(id);
      server.complete(id, chatResult("ok"));
      expect((await within(waiting, 2_000, "wait")).state).to.equal("done");
      expect(server.requestsTo("GET", `/jobs/${id}`)).to.have.length(3);
    });

    it("does not retry an error about the request: an unknown job is a 404 at once", async () => {
      const error = await rejection(client.wait("nope"), "wait on an unknown job");
      expect(error).to.include({ status: 404 });
      expect(server.requests).to.have.length(1);
    });

    it("rejects with the caller's abort reason and lets the poll go", async () => {
      const { id } = await client.submit(CHAT);
      const controller = new AbortController();
      const waiting = client.wait(id, { signal: controller.signal });
      await pollParked(id);
      controller.abort(new Error("shutting down"));
      expect(((await rejection(waiting, "an aborted wait")) as Error).message).to.equal("shutting down");
      await server.until(() => server.parkedPolls(id) === 0, "the abandoned poll to close");
    });
  });

  describe("run (the synchronous facade)", () => {
    it("resolves with the finished job when it is done, submitted with a random Idempotency-Key", async () => {
      const running = client.run(CHAT);
      await onlyJobPolled();
      const id = server.jobIds()[0]!;
      server.moveTo(id, "loading");
      server.moveTo(id, "working");
      server.complete(id, chatResult("Because of Rayleigh scattering."));

      const job = await within(running, 2_000, "run");
      expect(job).to.deep.include({ id, state: "done", result: chatResult("Because of Rayleigh scattering.") });
      expect(job.metrics).to.deep.include({ eval_count: 40, load_duration: 400_000_000 });
      const key = server.requestsTo("POST", "/jobs")[0]!.headers["idempotency-key"];
      expect(key).to.match(/^[0-9a-f-]{36}$/);
    });

    it("rejects with a JobFailedError carrying the job when it fails", async () => {
      const running = client.run(GENERATE);
      await onlyJobPolled();
      const id = server.jobIds()[0]!;
      server.fail(id, 'model "qwen3:8b" not found, try pulling it first');
      const error = await rejection(running, "run of a failing job");
      expect(error).to.be.instanceOf(JobFailedError);
      expect(error).to.include({ state: "failed" });
      expect((error as JobFailedError).job).to.deep.include({
        id,
        state: "failed",
        error: 'model "qwen3:8b" not found, try pulling it first',
      });
    });

    it("rejects with a JobFailedError when the job is canceled", async () => {
      const running = client.run(CHAT);
      await onlyJobPolled();
      const id = server.jobIds()[0]!;
      const outcome = rejection(running, "run of a canceled job");
      await client.cancel(id);
      const error = await outcome;
      expect(error).to.be.instanceOf(JobFailedError);
      expect(error).to.include({ state: "canceled", message: `job ${id} was canceled` });
      expect((error as JobFailedError).job.state).to.equal("canceled");
    });

    it("cannot make two jobs out of one run whose submit answer was lost", async () => {
      server.injectFaults("lose-response");
      const running = client.run(CHAT);
      await onlyJobPolled();
      const id = server.jobIds()[0]!;
      server.complete(id, chatResult("once"));
      expect((await within(running, 2_000, "run")).id).to.equal(id);
      const keys = server.requestsTo("POST", "/jobs").map((r) => r.headers["idempotency-key"]);
      expect(keys).to.have.length(2);
      expect(keys[0]).to.be.a("string").and.equal(keys[1]);
    });

    it("times out with the key, and a second run with that key picks up the same job", async () => {
      const first = client.run(CHAT, { idempotencyKey: "nightly-42", timeoutMs: 300 });
      const error = (await rejection(first, "a run that times out")) as JobTimeoutError;
      expect(error).to.be.instanceOf(JobTimeoutError);
      expect(error).to.include({ idempotencyKey: "nightly-42", timeoutMs: 300 });
      const id = server.jobIds()[0]!;
      expect(error.jobId).to.equal(id);

      const again = client.run(CHAT, { idempotencyKey: "nightly-42" });
      await server.until(() => server.requestsTo("POST", "/jobs").length === 2, "the second submit");
      await pollParked(id);
      server.complete(id, chatResult("eventually"));
      expect((await within(again, 2_000, "the second run")).id).to.equal(id);
      expect(server.jobIds()).to.deep.equal([id]);
    });

    it("rejects with the caller's abort reason", async () => {
      const controller = new AbortController();
      const running = client.run(CHAT, { signal: controller.signal });
      await onlyJobPolled();
      controller.abort(new Error("ctrl-c"));
      expect(((await rejection(running, "an aborted run")) as Error).message).to.equal("ctrl-c");
    });
  });

  describe("chat and generate", () => {
    it("chat sends model, messages and job fields, and returns the assistant's text with the job", async () => {
      const messages = [{ role: "user", content: "Why is the sky blue?" }];
      const answering = client.chat("llama3.2", messages, {
        options: { temperature: 0 },
        think: false,
        metadata: { row: 7 },
        timeoutMs: 10_000,
        idempotencyKey: "row-7",
      });
      await onlyJobPolled();
      const id = server.jobIds()[0]!;
      server.complete(id, chatResult("Rayleigh scattering."));
      const answer = await within(answering, 2_000, "chat");
      expect(answer.text).to.equal("Rayleigh scattering.");
      expect(answer.message).to.deep.equal({ role: "assistant", content: "Rayleigh scattering." });
      expect(answer.job).to.deep.include({ id, state: "done", metadata: { row: 7 } });

      const [post] = server.requestsTo("POST", "/jobs");
      expect(JSON.parse(post!.body)).to.deep.equal({
        options: { temperature: 0 },
        think: false,
        metadata: { row: 7 },
        model: "llama3.2",
        messages,
      });
      expect(post!.headers["idempotency-key"]).to.equal("row-7");
    });

    it("generate returns the response text, fetching a result too large to inline from result_url", async () => {
      const answering = client.generate("qwen3:8b", "Write a haiku", { system: "Be brief." });
      await onlyJobPolled();
      const id = server.jobIds()[0]!;
      const result: GenerateResponse = {
        model: "qwen3:8b",
        created_at: "2025-01-01T00:00:02.000Z",
        response: "Old pond, frog jumps in",
        thinking: "a classic",
        done: true,
      };
      server.complete(id, result, { inline: false });
      const answer = await within(answering, 2_000, "generate");
      expect(answer).to.deep.include({ text: "Old pond, frog jumps in", thinking: "a classic" });
      expect(answer.job.result).to.equal(null);
      expect(answer.job.result_url).to.equal(`/jobs/${id}/artifacts/result.json`);
      expect(JSON.parse(server.requestsTo("POST", "/jobs")[0]!.body)).to.deep.equal({
        system: "Be brief.",
        model: "qwen3:8b",
        prompt: "Write a haiku",
      });
    });

    it("chat rejects with a JobFailedError like run", async () => {
      const answering = client.chat("llama3.2", [{ role: "user", content: "hi" }]);
      await onlyJobPolled();
      server.fail(server.jobIds()[0]!, "interrupted 3 times");
      expect(await rejection(answering, "chat of a failing job")).to.be.instanceOf(JobFailedError);
    });
  });

  describe("construction", () => {
    it("refuses a negative timeout and a base URL it cannot use", () => {
      expect(() => new ForemanClient({ baseUrl: "http://127.0.0.1:11435", timeoutMs: -1 })).to.throw(TypeError);
      expect(() => new ForemanClient({ baseUrl: "localhost:11435" })).to.throw(TypeError, /baseUrl/);
    });

    it("uses an injected fetch for everything", async () => {
      const seen: string[] = [];
      const stub: typeof fetch = async (input) => {
        seen.push(String(input));
        return new Response(JSON.stringify({ jobs: [], next_cursor: null }), {
          headers: { "content-type": "application/json" },
        });
      };
      const stubbed = new ForemanClient({ baseUrl: "https://foreman.example/prefix", fetch: stub });
      expect(await stubbed.list({ state: "done" })).to.deep.equal({ jobs: [], nextCursor: null });
      expect(seen).to.deep.equal(["https://foreman.example/prefix/jobs?state=done"]);
    });
  });
});
