import dgram from "node:dgram";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { createLogger, openStore } from "@foreman/shared";
import { expect } from "chai";
import {
  createTargetWaker,
  type HttpWakeAction,
  magicPacket,
  sendHttpWake,
  sendUdpDatagram,
  type WakeAction,
  wakeActionsFromConfig,
} from "../src/target-waker.js";

const URL_WITH_SECRETS = "http://wake-user:pa55word@127.0.0.1:8123/api/webhook/hook-id-secret?token=qs-secret";
const ACTIONS: WakeAction[] = [
  { kind: "http", url: URL_WITH_SECRETS, method: "POST" },
  { kind: "wake-on-lan", mac: "52:54:00:12:34:56", address: "127.0.0.1", port: 9 },
];
const INTERVAL = 60_000;

function setup(options: { actions?: WakeAction[]; httpStatus?: number; httpError?: Error } = {}) {
  const world = { reachable: false as boolean | null, queued: true, t: 1_700_000_000_000 };
  const sent: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on("data", (d: Buffer) => {
    for (const l of d.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
  });
  const waker = createTargetWaker({
    logger: createLogger({ service: "worker", stream }),
    actions: options.actions ?? ACTIONS,
    intervalMs: INTERVAL,
    targetReachable: () => world.reachable,
    hasQueuedJobs: () => world.queued,
    now: () => world.t,
    sendHttp: async (action) => {
      sent.push(`http ${action.method}`);
      if (options.httpError) throw options.httpError;
      return options.httpStatus ?? 200;
    },
    sendDatagram: async (payload, address, port) => {
      sent.push(`udp ${address}:${port} ${payload.length}`);
    },
  });
  const logged = async () => {
    await new Promise((r) => setImmediate(r));
    return lines;
  };
  return { world, sent, waker, logged };
}

describe("target-waker", () => {
  it("fires once per interval while jobs wait on a down target", async () => {
    const { world, sent, waker } = setup();
    expect(await waker.runOnce()).to.equal("sent");
    expect(sent).to.deep.equal(["http POST", "udp 127.0.0.1:9 102"]);
    world.t += INTERVAL - 1;
    expect(await waker.runOnce()).to.equal("too-soon");
    world.t += 1;
    expect(await waker.runOnce()).to.equal("sent");
    world.t += 1;
    expect(await waker.runOnce()).to.equal("too-soon");
    expect(sent).to.have.length(4);
  });

  it("never fires while the queue is empty, and fires as soon as a job waits", async () => {
    const { world, sent, waker } = setup();
    world.queued = false;
    for (let i = 0; i < 3; i++) {
      expect(await waker.runOnce()).to.equal("queue-empty");
      world.t += INTERVAL;
    }
    expect(sent).to.deep.equal([]);
    world.queued = true;
    expect(await waker.runOnce()).to.equal("sent");
  });

  it("never fires while the target is up, or before the poller has seen it", async () => {
    const { world, sent, waker } = setup();
    for (const reachable of [null, true]) {
      world.reachable = reachable;
      expect(await waker.runOnce()).to.equal("target-not-down");
      world.t += INTERVAL;
    }
    expect(sent).to.deep.equal([]);
  });

  it("does nothing without configured actions", async () => {
    const { waker } = setup({ actions: [] });
    expect(await waker.runOnce()).to.equal("disabled");
    waker.start();
    await waker.stop();
  });

  it("logs each wake-up with where it went, never the URL's credentials, path or query", async () => {
    const { waker, logged } = setup();
    await waker.runOnce();
    const lines = await logged();
    const sentLines = lines.filter((l) => l.message === "target wake sent");
    expect(sentLines.map(({ action, to, status, mac }) => ({ action, to, status, mac }))).to.deep.equal([
      { action: "http", to: "http://127.0.0.1:8123", status: 200, mac: undefined },
      { action: "wake-on-lan", to: "127.0.0.1:9", status: undefined, mac: "52:54:00:12:34:56" },
    ]);
    const text = JSON.stringify(lines);
    for (const secret of ["pa55word", "wake-user", "hook-id-secret", "qs-secret"]) expect(text).to.not.include(secret);
  });

  it("logs a failed action without its URL, and waits the interval before trying again", async () => {
    const error = Object.assign(new TypeError("fetch failed"), {
      cause: Object.assign(new Error(`connect ECONNREFUSED for ${URL_WITH_SECRETS}`), { code: "ECONNREFUSED" }),
    });
    const { world, sent, waker, logged } = setup({ httpError: error });
    expect(await waker.runOnce()).to.equal("sent");
    world.t += INTERVAL - 1;
    expect(await waker.runOnce()).to.equal("too-soon");
    expect(sent).to.deep.equal(["http POST", "udp 127.0.0.1:9 102"]);
    const failed = (await logged()).filter((l) => l.message === "target wake failed");
    expect(failed).to.have.length(1);
    expect(failed[0]!.error).to.equal("ECONNREFUSED: connect ECONNREFUSED for [wake url]");
    expect(JSON.stringify(failed)).to.not.include("pa55word");
  });

  it("logs an error status from the wake URL as a warning", async () => {
    const { waker, logged } = setup({ actions: [ACTIONS[0]!], httpStatus: 503 });
    await waker.runOnce();
    const line = (await logged()).find((l) => l.message === "target wake answered with an error");
    expect(line).to.include({ level: "warn", status: 503, to: "http://127.0.0.1:8123" });
  });

  it("checks at once when kicked while started, and not after stop", async () => {
    let resolveSent: () => void = () => {};
    const sentOnce = new Promise<void>((r) => {
      resolveSent = r;
    });
    let sends = 0;
    const waker = createTargetWaker({
      logger: createLogger({ service: "worker", stream: new PassThrough() }),
      actions: [ACTIONS[1]!],
      intervalMs: 0,
      // Far longer than the test: only the kick can make it check.
      checkEveryMs: 3_600_000,
      targetReachable: () => false,
      hasQueuedJobs: () => true,
      sendDatagram: async () => {
        sends++;
        resolveSent();
      },
    });
    waker.kick();
    await new Promise((r) => setImmediate(r));
    expect(sends, "not started: a kick does nothing").to.equal(0);
    waker.start();
    waker.kick();
    await sentOnce;
    await waker.stop();
    waker.kick();
    await new Promise((r) => setImmediate(r));
    expect(sends).to.equal(1);
  });

  it("reads the queue from the store: a queued job makes it fire, an empty queue does not", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-waker-"));
    const store = openStore({ dbPath: path.join(dir, "foreman.db") });
    try {
      let t = 0;
      const waker = createTargetWaker({
        logger: createLogger({ service: "worker", stream: new PassThrough() }),
        actions: [ACTIONS[1]!],
        intervalMs: INTERVAL,
        targetReachable: () => false,
        hasQueuedJobs: () => store.jobs.hasQueuedJobs(),
        now: () => t,
        sendDatagram: async () => {},
      });
      expect(await waker.runOnce()).to.equal("queue-empty");
      const job = store.transitions.createJob({ kind: "chat", api: "ollama", mode: "async", model: "a", request: {} });
      expect(await waker.runOnce()).to.equal("sent");
      store.transitions.transition(job.id, "canceled", { reason: "test" });
      t += INTERVAL;
      expect(await waker.runOnce()).to.equal("queue-empty");
      const plan = store.db
        .prepare("EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued') AS queued")
        .all() as Array<{ detail: string }>;
      expect(plan.map((p) => p.detail).join(" | ")).to.match(/COVERING INDEX jobs_by_state \(state=\?\)/);
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("builds its actions from the configuration: none by default, URL and MAC when set", () => {
    const base = { wakeMethod: "POST" as const, wakeBroadcast: { address: "255.255.255.255", port: 9 } };
    expect(wakeActionsFromConfig({ ...base, wakeUrl: undefined, wakeMac: undefined })).to.deep.equal([]);
    expect(wakeActionsFromConfig({ ...base, wakeUrl: "http://h/x", wakeMac: "52:54:00:12:34:56" })).to.deep.equal([
      { kind: "http", url: "http://h/x", method: "POST" },
      { kind: "wake-on-lan", mac: "52:54:00:12:34:56", address: "255.255.255.255", port: 9 },
    ]);
  });
});

describe("target-waker: the real senders, on loopback", () => {
  it("a magic packet is six 0xFF and the MAC sixteen times, in one UDP datagram", async () => {
    const listener = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => listener.bind(0, "127.0.0.1", resolve));
    try {
      const received = new Promise<Buffer>((resolve) => listener.once("message", resolve));
      const { port } = listener.address();
      await sendUdpDatagram(magicPacket("52:54:00:AB:CD:EF"), "127.0.0.1", port);
      const packet = await received;
      expect(packet.length).to.equal(102);
      expect(packet.subarray(0, 6).equals(Buffer.alloc(6, 0xff))).to.equal(true);
      const mac = Buffer.from([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
      for (let i = 0; i < 16; i++)
        expect(packet.subarray(6 + i * 6, 12 + i * 6).equals(mac), `copy ${i}`).to.equal(true);
    } finally {
      listener.close();
    }
    expect(() => magicPacket("52:54:00:12:34")).to.throw(/not a MAC address/);
  });

  it("the HTTP request: the method, the URL's credentials as Basic auth, path and query kept, no redirect followed", async () => {
    const requests: Array<{ method?: string; url?: string; authorization?: string; agent?: string }> = [];
    const server = http.createServer((req, res) => {
      requests.push({
        method: req.method,
        url: req.url,
        authorization: req.headers.authorization,
        agent: req.headers["user-agent"],
      });
      res.writeHead(302, { location: "/elsewhere" }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const action: HttpWakeAction = {
        kind: "http",
        url: `http://wake%20user:pa55%3Aword@127.0.0.1:${port}/api/webhook/id?token=t`,
        method: "PUT",
      };
      expect(await sendHttpWake(action, 5_000)).to.equal(302);
      expect(requests).to.deep.equal([
        {
          method: "PUT",
          url: "/api/webhook/id?token=t",
          authorization: `Basic ${Buffer.from("wake user:pa55:word").toString("base64")}`,
          agent: "foreman-wake/1",
        },
      ]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
