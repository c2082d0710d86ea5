import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { expect } from "chai";
import { requestTarget } from "../src/target-connection.js";

interface Outcome {
  status?: number;
  body?: string;
  error?: NodeJS.ErrnoException;
  staleSocket?: boolean;
}

/**
 * A loopback target that answers "ok", except that `drop` may close the connection on the nth request's
 * arrival without answering it (as a target that closed an idle pooled socket looks to the client), or cut
 * it after the answer has begun.
 */
async function startTarget(drop: (n: number) => "answer" | "drop" | "cut") {
  let requests = 0;
  const connections = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const what = drop(++requests);
    if (what === "drop") return void req.socket.destroy();
    if (what === "cut") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("par");
      setImmediate(() => req.socket.destroy());
      return;
    }
    res.end("ok");
  });
  let connectionCount = 0;
  server.on("connection", (socket) => {
    connectionCount++;
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    port,
    requests: () => requests,
    connections: () => connectionCount,
    async close() {
      for (const socket of connections) socket.destroy();
      server.close();
      await once(server, "close");
    },
  };
}

/** One requestTarget call, resolved with what its caller saw. */
function get(
  port: number,
  agent: http.Agent | undefined,
  mayRetry = () => true,
  extra: http.RequestOptions = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    requestTarget({
      connectTimeoutMs: 2_000,
      send: () => http.request({ host: "127.0.0.1", port, path: "/", agent, ...extra }).end(),
      mayRetry,
      onResponse(res) {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
        res.on("error", (error) => resolve({ status: res.statusCode!, body, error }));
      },
      onError: (error, staleSocket) => resolve({ error, staleSocket }),
    });
  });
}

describe("target-connection", () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function warmPool(drop: Parameters<typeof startTarget>[0]) {
    const target = await startTarget(drop);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(
      () => target.close(),
      () => agent.destroy(),
    );
    const free = once(agent, "free");
    expect(await get(target.port, agent)).to.deep.equal({ status: 200, body: "ok" });
    await free;
    return { target, agent };
  }

  it("sends a request once more when the pooled socket it went out on was closed by the target", async () => {
    const { target, agent } = await warmPool((n) => (n === 2 ? "drop" : "answer"));
    expect(await get(target.port, agent)).to.deep.equal({ status: 200, body: "ok" });
    expect([target.requests(), target.connections()]).to.deep.equal([3, 2]);
  });

  it("sends it only once more", async () => {
    const { target, agent } = await warmPool((n) => (n === 1 ? "answer" : "drop"));
    const outcome = await get(target.port, agent);
    expect(outcome.error?.code).to.equal("ECONNRESET");
    expect(outcome.staleSocket).to.equal(false);
    expect(target.requests()).to.equal(3);
  });

  it("does not send it again when its caller says it may not, and says the socket was stale", async () => {
    const { target, agent } = await warmPool((n) => (n === 2 ? "drop" : "answer"));
    const outcome = await get(target.port, agent, () => false);
    expect(outcome.error?.code).to.equal("ECONNRESET");
    expect(outcome.staleSocket).to.equal(true);
    expect(target.requests()).to.equal(2);
  });

  it("does not send again a request dropped on a new connection: it may have reached the target", async () => {
    const target = await startTarget(() => "drop");
    cleanups.push(() => target.close());
    const outcome = await get(target.port, undefined, () => true, { agent: false });
    expect(outcome.error?.code).to.equal("ECONNRESET");
    expect(outcome.staleSocket).to.equal(false);
    expect(target.requests()).to.equal(1);
  });

  it("never sends again once the answer has begun", async () => {
    const { target, agent } = await warmPool((n) => (n === 2 ? "cut" : "answer"));
    const outcome = await get(target.port, agent);
    expect(outcome.status).to.equal(200);
    expect(outcome.error, "the caller sees the cut").to.not.equal(undefined);
    expect(target.requests()).to.equal(2);
  });

  it("fails a new connection that does not complete within the connect timeout with ETIMEDOUT", async () => {
    // A socket that never connects, as to a host that drops SYNs (no packet leaves this machine).
    const hanging = new net.Socket();
    Object.defineProperty(hanging, "connecting", { value: true });
    cleanups.push(() => hanging.destroy());
    const outcome = await new Promise<Outcome>((resolve) => {
      requestTarget({
        connectTimeoutMs: 50,
        send: () => http.request({ host: "127.0.0.1", path: "/", createConnection: () => hanging }).end(),
        mayRetry: () => true,
        onResponse: (res) => resolve({ status: res.statusCode! }),
        onError: (error, staleSocket) => resolve({ error, staleSocket }),
      });
    });
    expect(outcome.error?.code).to.equal("ETIMEDOUT");
    expect(outcome.error?.message).to.equal("connect timed out after 50 ms");
    expect(outcome.staleSocket).to.equal(false);
  });
});
