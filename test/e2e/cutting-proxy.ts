import net from "node:net";

/**
 * A loopback TCP proxy in front of the gateway that drops connections the way a flaky network does: for
 * each of the first `cuts` responses to a request whose first line matches `match`, it forwards the first
 * `cutAfterBodyBytes` bytes after the response headers and then destroys both sockets, mid-line as often
 * as not. Other connections pass through untouched. Cutting by byte count, not by time, keeps it
 * deterministic on a loaded machine.
 */
export interface CuttingProxy {
  url: string;
  /** Connections cut so far. */
  readonly cutCount: number;
  /** First lines of the requests that went through, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startCuttingProxy(options: {
  targetPort: number;
  match: RegExp;
  cuts: number;
  cutAfterBodyBytes: number;
}): Promise<CuttingProxy> {
  let cutCount = 0;
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(options.targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
    const destroyBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", destroyBoth);
    upstream.on("error", destroyBoth);

    // A kept-alive connection carries one request after another (never pipelined by fetch): each request
    // line starts a new exchange, and only a matching one's response is cut.
    let cutThis = false;
    let pending = Buffer.alloc(0);
    let cutAt = -1;
    let sent = 0;
    let cut = false;
    client.on("data", (data: Buffer) => {
      const line = /^[A-Z]+ \S+ HTTP\/1\.1\r\n/.exec(data.subarray(0, 2048).toString("latin1"))?.[0];
      if (line) {
        requests.push(line.trimEnd());
        cutThis = options.match.test(line) && cutCount < options.cuts;
        if (cutThis) cutCount++;
        pending = Buffer.alloc(0);
        cutAt = -1;
        sent = 0;
      }
      upstream.write(data);
    });
    client.on("end", () => upstream.end());

    upstream.on("data", (data: Buffer) => {
      if (cut) return;
      if (!cutThis) {
        client.write(data);
        return;
      }
      if (cutAt < 0) {
        pending = Buffer.concat([pending, data]);
        const headersEnd = pending.indexOf("\r\n\r\n");
        if (headersEnd < 0) return;
        cutAt = headersEnd + 4 + options.cutAfterBodyBytes;
        data = pending;
      }
      const room = cutAt - sent;
      if (data.length < room) {
        client.write(data);
        sent += data.length;
        return;
      }
      cut = true;
      client.write(data.subarray(0, room), destroyBoth);
    });
    upstream.on("end", () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get cutCount() {
      return cutCount;
    },
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
