import http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { createLogger } from "@foreman/shared";
import { expect } from "chai";
import express from "express";
import { createTargetProxy } from "../../src/proxy/target-proxy.js";

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: string;
  closedEarly: boolean;
}

/** A stand-in target on a real loopback socket that records what reached it. */
async function startTarget(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const record: Seen = { headers: req.headers, body: "", closedEarly: false };
    seen.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.closedEarly = true;
    });
    req.on("data", (d) => (record.body += d));
    req.on("end", () => handler(req, res, record));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, server };
}

/**
 * A gateway on the proxy alone. `buffered` reads the caller's body whole and forwards it as the body option,
 * as the embedding routes do; otherwise the body is streamed, as the management routes do.
 */
async function startGateway(targetUrl: string, token?: string, { buffered = false } = {}) {
  const logger = createLogger({ service: "test", stream: new PassThrough(), level: "error" });
  const proxy = createTargetProxy({ targetUrl, token, connectTimeoutMs: 1000, logger });
  const app = express();
  app.all("/{*path}", (req, res) => {
    if (!buffered) return proxy.forward(req, res);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => proxy.forward(req, res, { body: Buffer.concat(chunks) }));
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, proxy };
}

describe("proxy/target-proxy", () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  it("passes status, content type and body unchanged and swaps the caller's token for the target's", async () => {
    const target = await startTarget((_req, res) => {
      res.writeHead(404, { "content-type": "application/json; charset=utf-8", "x-target": "yes" });
      res.end('{"error":"model \\"x\\" not found, try pulling it first"}');
    });
    const gw = await startGateway(target.url, "target-token");
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    // node:http rather than fetch: fetch refuses to send a Connection header that names other headers.
    const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const req = http.request(`${gw.url}/api/show?x=1`, {
          method: "POST",
          headers: {
            authorization: "Bearer caller-token",
            "content-type": "application/json",
            "x-extra": "1",
            connection: "keep-alive, x-extra",
          },
        });
        req.on("response", (r) => {
          let body = "";
          r.on("data", (d) => (body += d));
          r.on("end", () => resolve({ status: r.statusCode!, headers: r.headers, body }));
        });
        req.on("error", reject);
        req.end(JSON.stringify({ model: "x" }));
      },
    );
    expect(res.status).to.equal(404);
    expect(res.headers["content-type"]).to.equal("application/json; charset=utf-8");
    expect(res.headers["x-target"]).to.equal("yes");
    expect(res.body).to.equal('{"error":"model \\"x\\" not found, try pulling it first"}');
    const seen = target.seen[0]!;
    expect(seen.headers.authorization).to.equal("Bearer target-token");
    expect(seen.headers["x-extra"], "named in Connection: hop-by-hop").to.equal(undefined);
    expect(seen.body).to.equal('{"model":"x"}');
  });

  it("does not forward the caller's Authorization when no target token is set", async () => {
    const target = await startTarget((_req, res) => res.end("ok"));
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    await (await fetch(`${gw.url}/api/tags`, { headers: { authorization: "Bearer caller" } })).text();
    expect(target.seen[0]!.headers.authorization).to.equal(undefined);
  });

  it("streams: the first chunk reaches the caller before the target has finished", async () => {
    let finish: () => void = () => {};
    const target = await startTarget((_req, res) => {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"status":"pulling manifest"}\n');
      finish = () => res.end('{"status":"success"}\n');
    });
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const res = await fetch(`${gw.url}/api/pull`, { method: "POST", body: "{}" });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).to.equal('{"status":"pulling manifest"}\n');
    finish();
    const rest = await reader.read();
    expect(Buffer.from(rest.value!).toString()).to.equal('{"status":"success"}\n');
  });

  it("aborts the upstream request when the caller goes away", async () => {
    let upstreamClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const target = await startTarget((_req, res) => {
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write("{}\n");
      res.on("close", () => upstreamClosed());
    });
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/api/pull`, { method: "POST", body: "{}", signal: controller.signal });
    await res.body!.getReader().read();
    controller.abort();
    await closed;
    expect(target.seen[0]!.closedEarly).to.equal(true);
  });

  it("answers 502 with Ollama's error shape when the target refuses connections", async () => {
    const target = await startTarget((_req, res) => res.end());
    const url = target.url;
    await new Promise((r) => target.server.close(r));
    const gw = await startGateway(url);
    closers.push(
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const res = await fetch(`${gw.url}/api/tags`);
    expect(res.status).to.equal(502);
    const body = (await res.json()) as { error: string };
    expect(body.error).to.match(/^ollama target unreachable: ECONNREFUSED/);
  });

  it("sends a GET once more when the pooled socket it went out on had been closed by the target", async () => {
    const answeredOn = new WeakSet<object>();
    let dropped = 0;
    const target = await startTarget((req, res) => {
      if (answeredOn.has(req.socket) && dropped === 0) {
        dropped++;
        req.socket.destroy();
        return;
      }
      answeredOn.add(req.socket);
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end('{"models":[]}');
    });
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.closeAllConnections(),
      () => target.server.close(),
      () => gw.server.closeAllConnections(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const first = await fetch(`${gw.url}/api/tags`);
    expect(await first.text()).to.equal('{"models":[]}');
    const second = await fetch(`${gw.url}/api/tags`);
    expect(second.status).to.equal(200);
    expect(await second.text()).to.equal('{"models":[]}');
    expect([target.seen.length, dropped]).to.deep.equal([3, 1]);
  });
  it("sends the target's Host and a Content-Length for the body it forwards, not the caller's", async () => {
    const target = await startTarget((_req, res) => res.end("ok"));
    const gw = await startGateway(target.url, undefined, { buffered: true });
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const res = await fetch(`${gw.url}/api/embed`, { method: "POST", body: '{"model":"m","input":"x"}' });
    expect(await res.text()).to.equal("ok");
    const seen = target.seen[0]!;
    expect(seen.headers.host).to.equal(new URL(target.url).host);
    expect(seen.headers["content-length"]).to.equal("25");
    expect(seen.headers["transfer-encoding"]).to.equal(undefined);
    expect(seen.body).to.equal('{"model":"m","input":"x"}');
  });

  it("passes repeated response headers through, each one", async () => {
    const target = await startTarget((_req, res) => {
      res.setHeader("set-cookie", ["a=1", "b=2"]);
      res.end("ok");
    });
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    // The pass-through dispatcher's raw response, with no header set before the proxy's.
    const raw = http.createServer((req, res) => gw.proxy.forward(req, res));
    await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
    closers.push(() => raw.close());
    const rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
    for (const url of [gw.url, rawUrl]) {
      const res = await fetch(`${url}/api/tags`);
      expect(res.headers.getSetCookie()).to.deep.equal(["a=1", "b=2"]);
    }
  });

  it("re-chunks a streamed body that came without a length", async () => {
    const target = await startTarget((_req, res) => res.end("ok"));
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.url}/api/create`, { method: "POST" });
      req.on("response", (r) => {
        r.resume();
        r.on("end", () => resolve(r.statusCode!));
      });
      req.on("error", reject);
      req.write('{"model":');
      req.end('"x"}');
    });
    expect(status).to.equal(200);
    expect(target.seen[0]!.headers["transfer-encoding"]).to.equal("chunked");
    expect(target.seen[0]!.body).to.equal('{"model":"x"}');
  });

  it("streams a large answer whole to a caller that reads slower than the target writes", async () => {
    const chunk = Buffer.alloc(64 * 1024, "x");
    const chunks = 128; // 8 MiB: many times the socket buffers, so backpressure must hold the target back
    const target = await startTarget((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let sent = 0;
      const pump = () => {
        while (sent < chunks) {
          sent++;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    const gw = await startGateway(target.url);
    closers.push(
      () => target.server.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const received = await new Promise<number>((resolve, reject) => {
      http
        .get(`${gw.url}/api/blobs/x`, (r) => {
          let bytes = 0;
          r.on("data", (d: Buffer) => {
            bytes += d.length;
            // Reading in turns of the event loop keeps the caller's socket buffer full at times.
            r.pause();
            setImmediate(() => r.resume());
          });
          r.on("end", () => resolve(bytes));
          r.on("error", reject);
        })
        .on("error", reject);
    });
    expect(received).to.equal(chunk.length * chunks);
  });

  it("closes the upstream request when the caller goes away halfway through sending its body", async () => {
    let upstreamGone: () => void = () => {};
    const gone = new Promise<void>((r) => (upstreamGone = r));
    let arrived = "";
    let halfArrived: () => void = () => {};
    const half = new Promise<void>((r) => (halfArrived = r));
    const upstream = http.createServer((req) => {
      req.on("data", (d) => {
        arrived += d;
        if (arrived.length === 500) halfArrived();
      });
      req.on("close", () => upstreamGone());
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const gw = await startGateway(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    closers.push(
      () => upstream.closeAllConnections(),
      () => upstream.close(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const caller = http.request(`${gw.url}/api/create`, {
      method: "POST",
      headers: { "content-length": "1000" },
    });
    caller.on("error", () => {});
    caller.write("a".repeat(500));
    // Once the first half has reached the target, go away.
    await half;
    caller.destroy();
    await gone;
    expect(arrived.length).to.equal(500);
  });

  it("sends a buffered POST body once more when the pooled socket it went out on had been closed", async () => {
    const answeredOn = new WeakSet<object>();
    let dropped = 0;
    const target = await startTarget((req, res) => {
      if (answeredOn.has(req.socket) && dropped === 0) {
        dropped++;
        req.socket.destroy();
        return;
      }
      answeredOn.add(req.socket);
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end('{"embeddings":[[0.1]]}');
    });
    const gw = await startGateway(target.url, undefined, { buffered: true });
    closers.push(
      () => target.server.closeAllConnections(),
      () => target.server.close(),
      () => gw.server.closeAllConnections(),
      () => gw.server.close(),
      () => gw.proxy.close(),
    );
    const body = '{"model":"nomic-embed-text","input":"x"}';
    const first = await fetch(`${gw.url}/api/embed`, { method: "POST", body });
    expect(await first.text()).to.equal('{"embeddings":[[0.1]]}');
    const second = await fetch(`${gw.url}/api/embed`, { method: "POST", body });
    expect(second.status).to.equal(200);
    expect(await second.text()).to.equal('{"embeddings":[[0.1]]}');
    expect(target.seen.map((s) => s.body)).to.deep.equal([body, body, body]);
    expect(dropped).to.equal(1);
  });
});
