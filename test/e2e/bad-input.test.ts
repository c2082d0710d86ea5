import http from "node:http";
import net from "node:net";
import { expect } from "chai";
import { DEFAULT_MODELS, type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, type Proc, stopAll } from "./harness.js";

const TOKEN = "bad-input-test-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface Case {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Bytes written to the socket as they are (a malformed request line or header). */
  raw?: string;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** One request exactly as described: no client-side normalization of the path, headers or body. */
function send(port: number, c: Case): Promise<Answer> {
  if (c.raw !== undefined) return sendRaw(port, c.raw);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...AUTH, ...c.headers };
    if (c.body !== undefined && headers["transfer-encoding"] === undefined) {
      headers["content-length"] ??= Buffer.byteLength(c.body);
    }
    const req = http.request({ host: "127.0.0.1", port, method: c.method, path: c.path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "", body }),
      );
    });
    req.on("error", reject);
    req.end(c.body);
  });
}

function sendRaw(port: number, raw: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(raw));
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (d) => (received += d));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head = "", body = ""] = received.split("\r\n\r\n");
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
      const contentType = /^content-type: (.*)$/im.exec(head)?.[1] ?? "";
      resolve({ status, contentType, body });
    });
  });
}

const json = (value: unknown) => JSON.stringify(value);
const nested = (levels: number) => `${"[".repeat(levels)}1${"]".repeat(levels)}`;
const notUtf8 = Buffer.concat([
  Buffer.from('{"model":"llama3.2","prompt":"'),
  Buffer.from([0xff, 0xfe]),
  Buffer.from('"}'),
]);
const chat = { model: "llama3.2", messages: [{ role: "user", content: "hi" }] };

/** Malformed bodies every JSON route must refuse with a 4xx. */
function malformedBodies(): Array<[string, string | Buffer, Record<string, string>?]> {
  return [
    ["truncated JSON", '{"model":"llama3.2","messages":[{"role":'],
    ["a top-level array", "[]"],
    ["a top-level string", '"llama3.2"'],
    ["null", "null"],
    ["a number", "42"],
    ["model of the wrong type", json({ model: 7, prompt: "x", messages: [] })],
    ["deeply nested", `{"model":"llama3.2","prompt":"x","messages":[],"options":${nested(5000)}}`],
    ["bytes that are not UTF-8", notUtf8],
    ["a charset nobody knows", json(chat), { "content-type": "application/json; charset=klingon" }],
    ["gzip that is not gzip", "definitely not gzip", { "content-encoding": "gzip" }],
    ["an unknown content encoding", json(chat), { "content-encoding": "zstd-nope" }],
    ["a body over FOREMAN_BODY_LIMIT", json({ ...chat, pad: "x".repeat(70 * 1024) })],
  ];
}

function cases(doneJobId: string): Case[] {
  const list: Case[] = [];
  const post = (path: string, name: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    list.push({ name: `POST ${path}: ${name}`, method: "POST", path, body, headers });

  for (const route of ["/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions", "/jobs"]) {
    for (const [name, body, headers] of malformedBodies()) post(route, name, body, headers);
    post(route, "no body at all", "");
  }

  // Generation routes: the checks foreman makes, and what it leaves to the target (answered in Ollama's words).
  post("/api/chat", "stream of the wrong type", json({ ...chat, stream: "yes" }));
  post("/api/chat", "messages not an array", json({ model: "llama3.2", messages: "hi" }));
  post("/api/chat", "an empty model name", json({ ...chat, model: "" }));
  post("/api/chat", "a model the target does not have", json({ ...chat, model: "no-such-model", stream: false }));
  post("/api/generate", "prompt of the wrong type", json({ model: "llama3.2", prompt: ["x"] }));
  post("/api/generate", "stream as a huge number", json({ model: "llama3.2", prompt: "x", stream: 1e308 }));
  post("/api/generate", "a model the target does not have", json({ model: "nope", prompt: "x", stream: false }));
  post("/v1/chat/completions", "no messages", json({ model: "llama3.2" }));
  post("/v1/chat/completions", "messages an object", json({ model: "llama3.2", messages: { role: "user" } }));
  post("/v1/completions", "prompt a number", json({ model: "llama3.2", prompt: 12 }));

  // POST /jobs: every field's type and form.
  const job = { model: "llama3.2", prompt: "x" };
  for (const [name, body] of [
    ["no model", { prompt: "x" }],
    ["an empty model", { ...job, model: "" }],
    ["both messages and prompt", { ...job, messages: [] }],
    ["neither messages nor prompt", { model: "llama3.2" }],
    ["messages not an array", { model: "llama3.2", messages: "hi" }],
    ["a message without a role", { model: "llama3.2", messages: [{ content: "hi" }] }],
    ["a message that is a number", { model: "llama3.2", messages: [1] }],
    ["a role that is a number", { model: "llama3.2", messages: [{ role: 1, content: "hi" }] }],
    ["images not an array", { ...job, images: "abc" }],
    ["options an array", { ...job, options: [1] }],
    ["format neither json nor a schema", { ...job, format: "xml" }],
    ["tools not an array", { ...job, tools: {} }],
    ["think an unknown level", { ...job, think: "extreme" }],
    ["keep_alive an object", { ...job, keep_alive: {} }],
    ["stream a string", { ...job, stream: "no" }],
    ["an unknown field", { ...job, temperature: 2 }],
    ["metadata an array", { ...job, metadata: [1, 2] }],
    ["metadata over 16 KiB", { ...job, metadata: { pad: "x".repeat(17 * 1024) } }],
    ["a webhook without a url", { ...job, webhook: {} }],
    ["a webhook url that is no URL", { ...job, webhook: { url: "not a url" } }],
    ["a webhook url with another scheme", { ...job, webhook: { url: "ftp://127.0.0.1/x" } }],
    ["a webhook secret without base64", { ...job, webhook: { url: "http://127.0.0.1:1/x", secret: "whsec_" } }],
    [
      "a webhook event that does not exist",
      { ...job, webhook: { url: "http://127.0.0.1:1/x", events: ["job.maybe"] } },
    ],
    ["no webhook events", { ...job, webhook: { url: "http://127.0.0.1:1/x", events: [] } }],
    ["a webhook event twice", { ...job, webhook: { url: "http://127.0.0.1:1/x", events: ["job.done", "job.done"] } }],
  ] as const) {
    post("/jobs", name, json(body));
  }
  post("/jobs", "an Idempotency-Key over 255 characters", json(job), { "idempotency-key": "k".repeat(256) });
  post("/jobs", "an empty Idempotency-Key", json(job), { "idempotency-key": "" });
  post("/jobs", "an Idempotency-Key reused with another body", json({ ...job, prompt: "other" }), {
    "idempotency-key": "reused-key",
  });

  // Query parameters and ids of the read routes.
  const get = (path: string, name: string, headers: Record<string, string> = {}) =>
    list.push({ name: `GET ${path}: ${name}`, method: "GET", path, headers });
  get("/jobs?state=sleeping", "an unknown state");
  get("/jobs?state=queued&state=done", "state twice");
  get("/jobs?model=a&model=b", "model twice");
  get("/jobs?limit=0", "limit 0");
  get("/jobs?limit=101", "limit over 100");
  get("/jobs?limit=abc", "limit not a number");
  get("/jobs?limit=1e400", "limit a huge number");
  get("/jobs?limit=2.5", "limit a fraction");
  get("/jobs?cursor=!!!", "a cursor that is not base64url");
  get(`/jobs?cursor=${Buffer.from("not-an-id").toString("base64url")}`, "a cursor of something else");
  get("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "a job that does not exist");
  get("/jobs/nope", "an id that is no ULID");
  get("/jobs/%FF", "an id that is not UTF-8");
  get("/jobs/%00", "a NUL id");
  get(`/jobs/${"x".repeat(4000)}`, "a very long id");
  get("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV?wait=-1", "wait on a missing job");
  get("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/stream", "the stream of a missing job");
  get("/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/artifacts/result.json", "an artifact of a missing job");
  get(`/jobs/${doneJobId}/artifacts/..%2F..%2Fforeman.db`, "an artifact name that climbs out");
  get(`/jobs/${doneJobId}/artifacts/%2e%2e`, "an artifact named ..");
  get(`/jobs/${doneJobId}/artifacts/a%00b`, "an artifact name with NUL");
  get(`/jobs/${doneJobId}/artifacts/missing.txt`, "an artifact that does not exist");
  get(`/jobs/${doneJobId}/artifacts/%FF`, "an artifact name that is not UTF-8");
  list.push({
    name: "cancel of a job that does not exist",
    method: "POST",
    path: "/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel",
  });
  list.push({ name: "cancel of a job that has ended", method: "POST", path: `/jobs/${doneJobId}/cancel` });

  // Pass-through routes: refused paths, and malformed bodies answered by the target in Ollama's words.
  get("/v1/models/../../../api/pull", "a model path that climbs out");
  get("/v1/models/%2e%2e%2f%2e%2e%2fx", "an encoded climb");
  get("/v1/models/a%2Fb", "an encoded slash");
  for (const route of ["/api/embed", "/api/embeddings", "/api/show", "/v1/embeddings"]) {
    post(route, "truncated JSON", '{"model":"nomic-embed-text","input":');
    post(route, "a body over FOREMAN_BODY_LIMIT", json({ model: "nomic-embed-text", input: "x".repeat(70 * 1024) }));
  }
  post("/api/embed", "a model the target does not have", json({ model: "no-such-embedder", input: "x" }));
  post("/api/show", "no model", json({}));

  // Management is off: refused, saying how to turn it on.
  post("/api/pull", "management disabled", json({ model: "llama3.2" }));
  post("/api/create", "management disabled", json({ model: "x" }));
  list.push({
    name: "DELETE /api/delete: management disabled",
    method: "DELETE",
    path: "/api/delete",
    body: json({ model: "x" }),
  });
  post(`/api/blobs/sha256:${"0".repeat(64)}`, "management disabled", "bytes");

  // Credentials.
  for (const path of ["/jobs", "/api/tags", `/jobs/${doneJobId}`, "/api/chat"]) {
    list.push({ name: `${path} without a token`, method: "GET", path, headers: { authorization: "" } });
    list.push({ name: `${path} with a wrong token`, method: "GET", path, headers: { authorization: "Bearer wrong" } });
  }
  list.push({
    name: "a Basic credential",
    method: "GET",
    path: "/jobs",
    headers: { authorization: "Basic Zm9vOmJhcg==" },
  });

  // HTTP itself: answered by the server before any route, still in Ollama's shape.
  const raw = (name: string, text: string) => list.push({ name, method: "RAW", path: "", raw: text });
  raw("a request line that is not HTTP", "HELLO WORLD\r\n\r\n");
  raw("a header without a colon", "GET /jobs HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n");
  raw("a Content-Length that is no number", "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}");
  raw(
    "Content-Length and Transfer-Encoding together",
    "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  );
  raw("a bad chunk size", "POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n");
  raw("headers over 16 KiB", `GET /jobs HTTP/1.1\r\nHost: x\r\nX-Pad: ${"x".repeat(20_000)}\r\n\r\n`);
  raw("a control character in a header value", "GET /jobs HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n");
  return list;
}

/** Long polls on a job that is still running: a wait that is no number of seconds. */
function waitCases(runningJobId: string): Case[] {
  const list: Case[] = ["-1", "abc", "1e400", "NaN", "Infinity", "-Infinity", "0x10", "", "%205%20"].map((wait) => ({
    name: `wait=${wait} on a running job`,
    method: "GET",
    path: `/jobs/${runningJobId}?wait=${wait}`,
  }));
  list.push({ name: "wait given twice", method: "GET", path: `/jobs/${runningJobId}?wait=1&wait=2` });
  return list;
}

describe("e2e: bad input gets a 4xx in Ollama's shape, never a 5xx, and both processes live on", function () {
  this.timeout(120_000);
  let sim: Simulator;
  let f: Foreman;
  let worker: Proc;
  let doneJobId: string;
  const submit = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${f.url}/jobs`, {
      method: "POST",
      headers: { ...AUTH, ...headers },
      body: JSON.stringify(body),
    });
    expect(res.status).to.equal(202);
    return ((await res.json()) as { id: string }).id;
  };

  before(async () => {
    // "slowpoke" generates one token a second: a job that stays running while its long polls are checked.
    sim = await startSimulator({
      loadMs: 5,
      tokensPerSecond: 5000,
      models: [...DEFAULT_MODELS, { name: "slowpoke", tokensPerSecond: 1 }],
    });
    f = await foreman({
      ollamaUrl: sim.url,
      env: { FOREMAN_API_TOKEN: TOKEN, FOREMAN_BODY_LIMIT: "64kb", FOREMAN_MAX_WAIT_S: "1" },
    });
    await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("target up");
    doneJobId = await submit({ model: "llama3.2", prompt: "done" }, { "idempotency-key": "reused-key" });
    await worker.waitForLine((l) => l.includes(doneJobId) && l.includes('"job done"'));
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("answers at least 100 malformed requests across every route with a 4xx and {error}", async () => {
    const failures: string[] = [];
    const check = async (list: Case[]) => {
      for (const c of list) {
        const answer = await send(f.port, c);
        let error: unknown;
        try {
          error = (JSON.parse(answer.body) as { error?: unknown }).error;
        } catch {
          error = undefined;
        }
        // The target's answers on the OpenAI-compatible pass-through routes are in OpenAI's error shape, as
        // Ollama's own are; foreman's own refusals there are Ollama's.
        const message =
          c.path.startsWith("/v1/embeddings") && typeof error === "object"
            ? (error as { message?: unknown } | null)?.message
            : error;
        const ok =
          answer.status >= 400 &&
          answer.status < 500 &&
          answer.contentType.startsWith("application/json") &&
          typeof message === "string" &&
          message.length > 0;
        if (!ok)
          failures.push(
            `${c.name} (${c.method} ${c.path.slice(0, 80)}): ${answer.status} ${answer.body.slice(0, 200)}`,
          );
      }
    };
    const list = cases(doneJobId);
    await check(list);
    const running = await submit({ model: "slowpoke", prompt: "slow", options: { num_predict: 1000 } });
    await worker.waitForLine((l) => l.includes(running) && l.includes('"job working"'));
    const waits = waitCases(running);
    await check(waits);
    expect((await fetch(`${f.url}/jobs/${running}/cancel`, { method: "POST", headers: AUTH })).status).to.equal(200);
    expect(list.length + waits.length).to.be.at.least(100);
    expect(failures, failures.join("\n")).to.deep.equal([]);

    // Both processes are alive and well, and nothing was logged as unexpected.
    expect(f.gateway!.child.exitCode).to.equal(null);
    expect(worker.child.exitCode).to.equal(null);
    expect((await fetch(`${f.url}/healthz`)).status).to.equal(200);
    expect((await fetch(`${f.url}/readyz`)).status).to.equal(200);
    for (const proc of [f.gateway!, worker]) {
      expect(
        proc
          .logs()
          .filter((l) => l.message === "unhandled error")
          .map((l) => l.error),
      ).to.deep.equal([]);
    }
  });

  it("still serves good requests afterwards", async () => {
    const res = await fetch(`${f.url}/api/chat`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ ...chat, stream: false }),
    });
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { done: boolean }).done).to.equal(true);
  });
});
