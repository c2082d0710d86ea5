import dgram from "node:dgram";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, type Proc, stopAll } from "./harness.js";

interface Arrival<T> {
  value: T;
  at: number;
}

/** Collects arrivals and lets a test await the n-th one. */
function arrivals<T>() {
  const seen: Array<Arrival<T>> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    seen,
    push(value: T) {
      seen.push({ value, at: Date.now() });
      for (const w of waiters.filter((w) => seen.length >= w.n)) w.resolve();
    },
    nth(n: number): Promise<Arrival<T>> {
      if (seen.length >= n) return Promise.resolve(seen[n - 1]!);
      return new Promise((resolve) => waiters.push({ n, resolve: () => resolve(seen[n - 1]!) }));
    },
  };
}

const MAC = "52:54:00:ab:cd:ef";
const INTERVAL_MS = 1500;

describe("e2e: waking a sleeping target", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;
  let worker: Proc;
  let server: http.Server;
  let udp: dgram.Socket;
  const requests = arrivals<{ method?: string; url?: string; authorization?: string }>();
  const packets = arrivals<Buffer>();

  before(async () => {
    sim = await startSimulator({ loadMs: 5, tokensPerSecond: 2000 });
    server = http.createServer((req, res) => {
      requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    udp = dgram.createSocket("udp4");
    udp.on("message", (packet) => packets.push(packet));
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    f = await foreman({
      ollamaUrl: sim.url,
      env: {
        FOREMAN_POLL_MS: "200",
        FOREMAN_QUEUE_POLL_MS: "200",
        FOREMAN_WAKE_URL: `http://waker:pw-s3cret@127.0.0.1:${(server.address() as AddressInfo).port}/wake/hook-s3cret?token=q-s3cret`,
        FOREMAN_WAKE_MAC: MAC,
        // Only ever loopback in tests: the real default is the LAN's broadcast address.
        FOREMAN_WAKE_BROADCAST: `127.0.0.1:${udp.address().port}`,
        FOREMAN_WAKE_INTERVAL_MS: String(INTERVAL_MS),
      },
    });
    await f.startGateway();
    worker = f.startWorker();
    await worker.waitForLog("target up");
  });

  after(async () => {
    await stopAll();
    await sim.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    udp.close();
    fs.rmSync(f.dataDir, { recursive: true, force: true });
  });

  it("while a job waits on the down target: an HTTP request and a magic packet, once per interval; the job runs when it returns", async () => {
    await sim.faults.refuseConnections(60_000);
    await worker.waitForLog("target down");
    // The outage alone wakes nothing: no job waits yet.
    expect([requests.seen.length, packets.seen.length]).to.deep.equal([0, 0]);

    const submitted = await fetch(`${f.url}/jobs`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2", prompt: "wake up" }),
    });
    expect(submitted.status).to.equal(202);
    const { id } = (await submitted.json()) as { id: string };

    const [request, packet] = await Promise.all([requests.nth(1), packets.nth(1)]);
    expect(request.value).to.deep.equal({
      method: "POST",
      url: "/wake/hook-s3cret?token=q-s3cret",
      authorization: `Basic ${Buffer.from("waker:pw-s3cret").toString("base64")}`,
    });
    const mac = Buffer.from(MAC.replaceAll(":", ""), "hex");
    expect(packet.value.length).to.equal(102);
    expect(packet.value.subarray(0, 6).equals(Buffer.alloc(6, 0xff))).to.equal(true);
    for (let i = 0; i < 16; i++) expect(packet.value.subarray(6 + 6 * i, 12 + 6 * i).equals(mac)).to.equal(true);

    // Still down, still waiting: the next wake-up comes an interval later, not at every check (200 ms). Half
    // the interval is the bound, so the time a loaded machine takes to send one does not make the test flaky.
    const [secondRequest, secondPacket] = await Promise.all([requests.nth(2), packets.nth(2)]);
    expect(secondRequest.at - request.at).to.be.at.least(INTERVAL_MS / 2);
    expect(secondPacket.at - packet.at).to.be.at.least(INTERVAL_MS / 2);

    await sim.faults.clear();
    const done = (await (await fetch(`${f.url}/jobs/${id}?wait=30`)).json()) as { state: string };
    expect(done.state).to.equal("done");

    const wakeLines = worker.logs().filter((l) => l.message === "target wake sent");
    expect(wakeLines.length).to.be.at.least(4);
    const receiver = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(wakeLines.filter((l) => l.action === "http").every((l) => l.to === receiver)).to.equal(true);
    expect(wakeLines.filter((l) => l.action === "wake-on-lan").every((l) => l.mac === MAC)).to.equal(true);
    expect(worker.lines.filter((l) => l.includes("s3cret"))).to.deep.equal([]);
  });
});
