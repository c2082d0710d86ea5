import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { createLogger, openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import { makeTempDir } from "../../../test/temp-dirs.js";
import { type Simulator, startSimulator } from "../../ollama-sim/src/index.js";
import { createTargetClient, type TargetClient } from "../src/target-client.js";
import { createTargetPoller } from "../src/target-poller.js";

/** A target that is up or down on command and tracks what is resident. */
function fakeTarget() {
  const state = { up: true, resident: [] as string[], pins: 0 };
  const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:11434"), { code: "ECONNREFUSED" });
  const client = {
    baseUrl: "http://127.0.0.1:11434",
    async version() {
      if (!state.up) throw refused();
      return { version: "0.32.14" };
    },
    async ps() {
      if (!state.up) throw refused();
      return {
        models: state.resident.map((name) => ({ name, model: name, expires_at: "2318-01-01T00:00:00Z", size_vram: 1 })),
      };
    },
    async loadEmbedder(model: string) {
      state.pins++;
      state.resident.push(model);
    },
  } as unknown as TargetClient;
  return { state, client };
}

function setup(embedModel?: string, client?: TargetClient) {
  const dir = makeTempDir("foreman-poller-");
  const store = openStore({ dbPath: path.join(dir, "foreman.db") });
  const lines: Array<{ message: string; level: string }> = [];
  const stream = new PassThrough();
  stream.on("data", (d: Buffer) => {
    for (const l of d.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
  });
  const logger = createLogger({ service: "worker", stream });
  const target = fakeTarget();
  const poller = createTargetPoller({ client: client ?? target.client, store, logger, intervalMs: 10_000, embedModel });
  return { store, lines, target, poller };
}

describe("target-poller", () => {
  let store: Store | undefined;
  afterEach(() => {
    store?.close();
    if (store) fs.rmSync(path.dirname(store.db.name), { recursive: true, force: true });
  });

  it("records reachability, version and resident models for the gateway to read", async () => {
    const s = setup();
    store = s.store;
    s.target.state.resident = ["llama3.2:latest"];
    await s.poller.runOnce();
    expect(s.store.target.get()).to.deep.include({ reachable: true, version: "0.32.14", lastError: null });
    expect(s.store.target.get()!.resident.map((m) => m.name)).to.deep.equal(["llama3.2:latest"]);
  });

  it("logs each up/down change once, not every poll", async () => {
    const s = setup();
    store = s.store;
    await s.poller.runOnce();
    await s.poller.runOnce();
    s.target.state.up = false;
    await s.poller.runOnce();
    await s.poller.runOnce();
    const down = s.store.target.get()!;
    expect(down.reachable).to.equal(false);
    expect(down.lastError).to.match(/^ECONNREFUSED/);
    expect(down.lastSeenAt, "last seen survives the outage").to.be.a("number");
    s.target.state.up = true;
    await s.poller.runOnce();
    await new Promise((r) => setImmediate(r));
    expect(s.lines.map((l) => l.message).filter((m) => m.startsWith("target"))).to.deep.equal([
      "target up",
      "target down",
      "target up",
    ]);
  });

  it("calls onDown once per outage, the first poll included, and onUp once per return", async () => {
    const s = setup();
    store = s.store;
    const calls: string[] = [];
    const poller = createTargetPoller({
      client: s.target.client,
      store: s.store,
      logger: createLogger({ service: "worker", stream: new PassThrough() }),
      intervalMs: 10_000,
      embedModel: undefined,
      onUp: () => calls.push("up"),
      onDown: () => calls.push("down"),
    });
    s.target.state.up = false;
    await poller.runOnce();
    await poller.runOnce();
    s.target.state.up = true;
    await poller.runOnce();
    s.target.state.up = false;
    await poller.runOnce();
    expect(calls).to.deep.equal(["down", "up", "down"]);
  });

  it("pins the embedder when /api/ps lacks it, and only then", async () => {
    const s = setup("nomic-embed-text:latest");
    store = s.store;
    await s.poller.runOnce();
    await s.poller.runOnce();
    expect(s.target.state.pins).to.equal(1);
    s.target.state.resident = [];
    const result = await s.poller.runOnce();
    expect(result.pinned).to.equal(true);
    expect(s.target.state.pins).to.equal(2);
  });

  it("pins an embedder configured without its tag once, though /api/ps lists it as name:latest", async () => {
    const sim: Simulator = await startSimulator({ loadMs: 5 });
    const client = createTargetClient({ baseUrl: sim.url, token: undefined, timeoutMs: 5_000 });
    try {
      const s = setup("nomic-embed-text", client);
      store = s.store;
      expect((await s.poller.runOnce()).pinned, "first poll: not resident yet").to.equal(true);
      expect((await s.poller.runOnce()).pinned, "second poll: resident as nomic-embed-text:latest").to.equal(false);
      await s.poller.runOnce();
      expect(sim.stats().loads.total).to.equal(1);
      expect(s.lines.filter((l) => l.message === "embedder pinned")).to.have.length(1);
    } finally {
      client.close();
      await sim.close();
    }
  });

  it("shares one poll between concurrent callers", async () => {
    const s = setup();
    store = s.store;
    const [a, b] = [s.poller.runOnce(), s.poller.runOnce()];
    expect(a).to.equal(b);
    await a;
  });
});
