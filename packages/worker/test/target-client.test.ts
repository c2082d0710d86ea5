import { once } from "node:events";
import http from "node:http";
import type net from "node:net";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { ConnectError, createTargetClient, type TargetClient } from "../src/target-client.js";

/**
 * A loopback target that streams two NDJSON lines per request and can drop requests that arrive on a
 * connection it has already answered on, as a target that closed an idle keep-alive socket looks.
 */
async function startTarget(dropOnReused: number) {
  const answered = new WeakSet<net.Socket>();
  const seen = { requests: 0, dropped: 0, connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.requests++;
    req.resume();
    if (answered.has(req.socket) && seen.dropped < dropOnReused) {
      seen.dropped++;
      req.socket.destroy();
      return;
    }
    answered.add(req.socket);
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.end('{"response":"hi","done":false}\n{"response":"","done":true}\n');
  });
  server.on("connection", (socket) => {
    seen.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, "close");
    },
  };
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  let text = "";
  res.setEncoding("utf8");
  for await (const chunk of res) text += chunk;
  return text;
}

describe("target-client", () => {
  let client: TargetClient | undefined;
  let target: Awaited<ReturnType<typeof startTarget>> | undefined;
  afterEach(async () => {
    client?.close();
    await target?.close();
    client = target = undefined;
  });

  const open = () => client!.openStream("/api/generate", '{"model":"m","prompt":"p"}', new AbortController().signal);

  it("openStream sends a request once more by itself when its pooled socket had been closed by the target", async () => {
    target = await startTarget(1);
    client = createTargetClient({ baseUrl: target.url, token: undefined, timeoutMs: 5_000 });
    expect(await readAll(await open())).to.include('"done":true');
    const res = await open();
    expect(res.statusCode).to.equal(200);
    expect(await readAll(res)).to.include('"done":true');
    expect(target.seen).to.deep.equal({ requests: 3, dropped: 1, connections: 2 });
  });

  it("openStream rejects with a ConnectError when the target refuses the connection", async () => {
    target = await startTarget(0);
    const url = target.url;
    await target.close();
    target = undefined;
    client = createTargetClient({ baseUrl: url, token: undefined, timeoutMs: 5_000 });
    const err = await open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConnectError);
    expect((err as ConnectError).message).to.match(/^ECONNREFUSED: /);
    expect((err as ConnectError).reusedSocket).to.equal(false);
  });
});
