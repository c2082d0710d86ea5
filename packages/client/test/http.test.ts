import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { ForemanHttpError, ForemanNetworkError, ForemanProtocolError, ForemanTimeoutError } from "../src/errors.js";
import { HttpTransport } from "../src/http.js";
import { within } from "./fake-jobs-server.js";

const TOKEN = "s3cret-token-value";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A loopback server answering with `handler`; it records what it got and always closes. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: Seen[] = [];
  const events = new EventEmitter();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (piece: string) => {
      body += piece;
    });
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res);
      events.emit("request");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    events,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return await within(
    promise.then(
      () => {
        throw new Error("expected a rejection");
      },
      (error: unknown) => error,
    ),
    5_000,
    "the request to fail",
  );
}

describe("HttpTransport", () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
  });

  async function server(handler: Parameters<typeof serve>[0]) {
    const started = await serve(handler);
    closers.push(started.close);
    return started;
  }

  it("joins paths under the base URL, keeping a prefix and dropping trailing slashes", () => {
    const transport = new HttpTransport({ baseUrl: "https://foreman.example/api/foreman//", timeoutMs: 0 });
    const url = transport.resolve("/jobs/01J", { wait: 60, state: undefined, model: "qwen3:8b & co" });
    expect(url.href).to.equal("https://foreman.example/api/foreman/jobs/01J?wait=60&model=qwen3%3A8b+%26+co");
    expect(new HttpTransport({ baseUrl: "http://h:1", timeoutMs: 0 }).resolve("/jobs").href).to.equal(
      "http://h:1/jobs",
    );
  });

  it("sends JSON with the bearer token and Accept, and parses the JSON answer", async () => {
    const target = await server((_req, res) => json(res, 202, { id: "J" }));
    const transport = new HttpTransport({ baseUrl: target.url, token: TOKEN, timeoutMs: 5_000 });
    const answer = await transport.json({
      method: "POST",
      path: "/jobs",
      body: { model: "m", prompt: "p" },
      headers: { "Idempotency-Key": "k1" },
    });
    expect(answer).to.deep.equal({ id: "J" });
    const [request] = target.seen;
    expect(request?.headers).to.include({
      authorization: `Bearer ${TOKEN}`,
      accept: "application/json",
      "content-type": "application/json",
      "idempotency-key": "k1",
    });
    expect(JSON.parse(request?.body ?? "")).to.deep.equal({ model: "m", prompt: "p" });
  });

  it("sends no Authorization without a token, and never to another origin", async () => {
    const other = await server((_req, res) => json(res, 200, {}));
    const home = await server((_req, res) => json(res, 200, {}));
    await new HttpTransport({ baseUrl: home.url, timeoutMs: 5_000 }).json({ method: "GET", path: "/jobs" });
    expect(home.seen[0]?.headers.authorization).to.equal(undefined);

    const withToken = new HttpTransport({ baseUrl: home.url, token: TOKEN, timeoutMs: 5_000 });
    await withToken.json({ method: "GET", path: `${other.url}/jobs/J/artifacts/result.json` });
    expect(other.seen[0]?.headers.authorization).to.equal(undefined);
    await withToken.json({ method: "GET", path: `${home.url}/jobs/J/artifacts/result.json` });
    expect(home.seen[1]?.headers.authorization).to.equal(`Bearer ${TOKEN}`);
  });

  it("maps an Ollama-shaped error to ForemanHttpError with the text unchanged and the job id", async () => {
    const target = await server((_req, res) =>
      json(res, 409, { error: "job J has already ended (done)" }, { "x-foreman-job-id": "J" }),
    );
    const transport = new HttpTransport({ baseUrl: target.url, token: TOKEN, timeoutMs: 5_000 });
    const error = await failure(transport.json({ method: "POST", path: "/jobs/J/cancel" }));
    expect(error).to.be.instanceOf(ForemanHttpError);
    expect(error).to.include({
      status: 409,
      error: "job J has already ended (done)",
      message: "job J has already ended (done)",
      method: "POST",
      url: `${target.url}/jobs/J/cancel`,
      jobId: "J",
    });
  });

  it("uses the body's text when the error is not JSON, and the status line when there is no body", async () => {
    const target = await server((req, res) => {
      if (req.url === "/nope") {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
        res.end("404 page not found");
      } else {
        res.writeHead(502);
        res.end();
      }
    });
    const transport = new HttpTransport({ baseUrl: target.url, timeoutMs: 5_000 });
    const notFound = (await failure(transport.json({ method: "GET", path: "/nope" }))) as ForemanHttpError;
    expect(notFound).to.include({ status: 404, error: "404 page not found", jobId: null });
    const badGateway = (await failure(transport.json({ method: "GET", path: "/jobs" }))) as ForemanHttpError;
    expect(badGateway).to.include({ status: 502, error: "502 Bad Gateway" });
  });

  it("rejects a 2xx body that is not JSON with a ForemanProtocolError", async () => {
    const target = await server((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>proxy login</html>");
    });
    const transport = new HttpTransport({ baseUrl: target.url, timeoutMs: 5_000 });
    const error = await failure(transport.json({ method: "GET", path: "/jobs" }));
    expect(error).to.be.instanceOf(ForemanProtocolError);
    expect((error as Error).message).to.equal(
      `GET ${target.url}/jobs: expected a JSON body, got text/html: "<html>proxy login</html>"`,
    );
  });

  it("turns a refused connection into a ForemanNetworkError that does not mention the token", async () => {
    const gone = await serve(() => {});
    await gone.close();
    const transport = new HttpTransport({ baseUrl: gone.url, token: TOKEN, timeoutMs: 5_000 });
    const error = await failure(transport.json({ method: "GET", path: "/jobs/J" }));
    expect(error).to.be.instanceOf(ForemanNetworkError);
    expect(error).to.include({ code: "ECONNREFUSED", method: "GET", url: `${gone.url}/jobs/J` });
    expect((error as Error).message).to.match(/^GET http:\/\/127\.0\.0\.1:\d+\/jobs\/J failed: .*ECONNREFUSED/);
    expect(JSON.stringify(error) + String(error) + (error as Error).stack).not.to.include(TOKEN);
  });

  it("turns a connection dropped mid-body into a ForemanNetworkError", async () => {
    const target = await server((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"id": "J", "st');
      res.socket?.destroy();
    });
    const transport = new HttpTransport({ baseUrl: target.url, timeoutMs: 5_000 });
    expect(await failure(transport.json({ method: "GET", path: "/jobs/J" }))).to.be.instanceOf(ForemanNetworkError);
  });

  it("gives up with a ForemanTimeoutError when the server does not answer in time", async () => {
    const target = await server(() => {
      // never answers
    });
    const transport = new HttpTransport({ baseUrl: target.url, token: TOKEN, timeoutMs: 30 });
    const error = await failure(transport.json({ method: "GET", path: "/jobs/J" }));
    expect(error).to.be.instanceOf(ForemanTimeoutError);
    expect((error as Error).message).to.equal(`GET ${target.url}/jobs/J timed out after 30 ms`);
  });

  it("gives a long poll its wait on top of the timeout", async () => {
    // The server answers later than timeoutMs alone allows: its timer starts after the transport's, so it
    // fires after it however loaded the machine is. The wait added on top is far beyond any stall.
    const target = await server((_req, res) => {
      setTimeout(() => json(res, 200, { id: "J" }), 40);
    });
    const transport = new HttpTransport({ baseUrl: target.url, timeoutMs: 20 });
    expect(await transport.json({ method: "GET", path: "/jobs/J", extraTimeoutMs: 60_000 })).to.deep.equal({
      id: "J",
    });
  });

  it("rejects with the caller's abort reason, before sending when already aborted", async () => {
    let closedByClient: Promise<unknown> | undefined;
    const target = await server((_req, res) => {
      // Holds the request until the client goes away.
      closedByClient = once(res, "close");
    });
    const transport = new HttpTransport({ baseUrl: target.url, timeoutMs: 5_000 });
    const controller = new AbortController();
    const arrived = once(target.events, "request");
    const pending = failure(transport.json({ method: "GET", path: "/jobs/J", signal: controller.signal }));
    await within(arrived, 2_000, "the request to arrive");
    controller.abort(new Error("caller left"));
    expect(((await pending) as Error).message).to.equal("caller left");
    await within(closedByClient ?? Promise.resolve(), 2_000, "the server to see the connection close");

    const before = await failure(
      transport.json({ method: "GET", path: "/jobs/K", signal: AbortSignal.abort(new Error("too late")) }),
    );
    expect((before as Error).message).to.equal("too late");
    expect(target.seen).to.have.length(1);
  });

  it("returns an artifact's bytes with its content type (octet-stream when none is given)", async () => {
    const target = await server((req, res) => {
      if (req.url === "/typed") res.writeHead(200, { "content-type": "application/x-ndjson" });
      else res.removeHeader("content-type");
      res.end(Buffer.from([0, 1, 2, 255]));
    });
    const transport = new HttpTransport({ baseUrl: target.url, timeoutMs: 5_000 });
    const typed = await transport.bytes({ method: "GET", path: "/typed" });
    expect(typed.contentType).to.equal("application/x-ndjson");
    expect([...typed.bytes]).to.deep.equal([0, 1, 2, 255]);
    expect((await transport.bytes({ method: "GET", path: "/untyped" })).contentType).to.equal(
      "application/octet-stream",
    );
  });

  it("limits an NDJSON stream's wait for headers only, not the stream's length", async () => {
    // A fetch whose headers arrive at once (so the 20 ms limit cannot pass first, however loaded the machine
    // is), with a body that follows the request's signal as fetch's does and ends when the test says.
    const encode = (text: string) => new TextEncoder().encode(text);
    const requests: RequestInit[] = [];
    let finish: () => void = () => {};
    const fetchNow: typeof fetch = async (_url, init) => {
      requests.push(init!);
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encode('{"n":1}\n'));
          init!.signal!.addEventListener("abort", () => controller.error(init!.signal!.reason));
          finish = () => {
            controller.enqueue(encode('{"n":2}\n'));
            controller.close();
          };
        },
      });
      return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
    };
    const transport = new HttpTransport({ baseUrl: "http://127.0.0.1:1", timeoutMs: 20, fetch: fetchNow });
    const stream = transport.ndjson({ method: "GET", path: "/jobs/J/stream" });
    const lines: unknown[] = [(await stream.next()).value];
    // A timer set after the transport's 20 ms one fires after it: the stream has outlived the limit.
    await new Promise((resolve) => setTimeout(resolve, 40));
    finish();
    for await (const line of stream) lines.push(line);
    expect(lines).to.deep.equal([{ n: 1 }, { n: 2 }]);
    expect((requests[0]!.headers as Record<string, string>).Accept).to.equal("application/x-ndjson");
  });

  it("refuses a token that cannot be a header value without quoting it", () => {
    const bad = "abc def\nInjected: 1";
    expect(() => new HttpTransport({ baseUrl: "http://h", token: bad, timeoutMs: 0 }))
      .to.throw(TypeError)
      .that.satisfies((error: Error) => !error.message.includes("abc"));
  });

  it("refuses base URLs it cannot use, saying why", () => {
    const cases: Array<[string, RegExp]> = [
      ["127.0.0.1:11435", /absolute http\(s\) URL/],
      ["ftp://h/", /http or https/],
      ["http://user:pw@h/", /credentials/],
      ["http://h/?x=1", /query/],
    ];
    for (const [baseUrl, message] of cases) {
      expect(() => new HttpTransport({ baseUrl, timeoutMs: 0 }), baseUrl).to.throw(TypeError, message);
    }
  });
});
