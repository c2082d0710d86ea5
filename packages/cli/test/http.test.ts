import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { UnreachableError } from "../src/exit-codes.js";
import { type Endpoint, HttpStatusError, openStream, requestJson } from "../src/http.js";

const TOKEN = "http-test-token-0123456789";

async function serve(handler: http.RequestListener) {
  const server = http.createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const endpoint = (baseUrl: string): Endpoint => ({
  label: "the target",
  baseUrl,
  token: TOKEN,
  reachHint: "Check FOREMAN_OLLAMA_URL.",
  authHint: "fix FOREMAN_OLLAMA_TOKEN",
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

describe("http", () => {
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("sends the bearer token and JSON, and parses the JSON answer", async () => {
    let seen: { auth?: string; type?: string; body: string } = { body: "" };
    server = await serve((req, res) => {
      let body = "";
      req.on("data", (piece) => (body += piece));
      req.on("end", () => {
        seen = { auth: req.headers.authorization, type: req.headers["content-type"], body };
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      });
    });
    const answer = await requestJson(endpoint(server.url), {
      method: "POST",
      path: "/api/x",
      query: { a: 1, b: undefined },
      body: { m: 1 },
    });
    expect(answer).to.deep.equal({ ok: true });
    expect(seen).to.deep.equal({ auth: `Bearer ${TOKEN}`, type: "application/json", body: '{"m":1}' });
  });

  it("error answers keep the service's error text and status; 401 says which token to fix", async () => {
    server = await serve((req, res) => {
      if (req.url === "/401")
        res.writeHead(401, { "content-type": "application/json" }).end('{"error":"unauthorized"}');
      else if (req.url === "/404") res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found");
      else res.writeHead(400, { "content-type": "application/json" }).end('{"error":"model is required"}');
    });
    const e401 = (await failure(requestJson(endpoint(server.url), { path: "/401" }))) as HttpStatusError;
    expect(e401).to.be.instanceOf(HttpStatusError);
    expect(e401.exitCode).to.equal(1);
    expect(e401.message).to.equal("the target answered GET /401 with 401 (unauthorized): fix FOREMAN_OLLAMA_TOKEN");
    const e404 = await failure(requestJson(endpoint(server.url), { path: "/404" }));
    expect(e404.message).to.equal("the target answered GET /404 with 404: no such route (an older version?)");
    const e400 = (await failure(requestJson(endpoint(server.url), { path: "/400" }))) as HttpStatusError;
    expect([e400.status, e400.error]).to.deep.equal([400, "model is required"]);
    expect(e400.message).to.equal("model is required (the target answered GET /400 with 400)");
    for (const e of [e401, e404, e400]) expect(e.message).to.not.include(TOKEN);
  });

  it("no answer is an UnreachableError (exit 3): refused, or no headers within the time limit", async () => {
    server = await serve(() => {
      // Never answers.
    });
    const slow = await failure(requestJson(endpoint(server.url), { path: "/slow", timeoutMs: 100 }));
    expect(slow).to.be.instanceOf(UnreachableError);
    expect(slow.message).to.equal(`the target did not answer GET /slow within 100 ms (${server.url})`);
    const stream = await failure(
      openStream(endpoint(server.url), { path: "/slow", timeoutMs: 100 }, "text/event-stream"),
    );
    expect(stream).to.be.instanceOf(UnreachableError);
    // A port nothing listens on any more (a fresh one: no pooled connection to it can exist).
    const gone = await serve(() => {});
    const url = gone.url;
    await gone.close();
    const refused = await failure(requestJson(endpoint(url), { path: "/x" }));
    expect(refused).to.be.instanceOf(UnreachableError);
    expect(refused.message).to.match(
      new RegExp(`^cannot reach the target at ${url}: .*ECONNREFUSED.*\\. Check FOREMAN_OLLAMA_URL\\.$`),
    );
  });

  it("a caller's abort rejects with the caller's reason, and a body that is not JSON is a failure", async () => {
    server = await serve((req, res) => {
      if (req.url === "/html") res.writeHead(200, { "content-type": "text/html" }).end("<html>");
    });
    const controller = new AbortController();
    const pending = requestJson(endpoint(server.url), { path: "/hang", signal: controller.signal });
    const reason = new Error("stop");
    controller.abort(reason);
    expect(await failure(pending)).to.equal(reason);
    const html = await failure(requestJson(endpoint(server.url), { path: "/html" }));
    expect(html.message).to.equal("the target answered GET /html with something other than JSON");
  });
});
