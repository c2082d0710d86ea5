import path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { retainNativeHandles } from "../../packages/shared/src/store/database.js";
import { MIGRATIONS } from "../../packages/shared/src/store/migrations.js";
import { ENTRY, foreman, Proc, stopAll, tempDataDir } from "./harness.js";

describe("e2e: foundation (gateway and worker processes)", function () {
  // Generous: some tests start processes three times over, which takes seconds on a loaded machine.
  this.timeout(60_000);
  afterEach(stopAll);

  it("starts gateway and worker; healthz answers and readyz turns ready once the worker beats", async () => {
    const f = await foreman();
    await f.startGateway();
    const health = await fetch(`${f.url}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.equal({ status: "ok" });

    const notReady = await fetch(`${f.url}/readyz`);
    expect(notReady.status).to.equal(503);

    const worker = f.startWorker();
    await worker.waitForLog("active worker");
    const ready = await fetch(`${f.url}/readyz`);
    const body = (await ready.json()) as {
      status: string;
      worker: { fresh: boolean };
      database: { writable: boolean };
    };
    expect(ready.status).to.equal(200);
    expect(body.status).to.equal("ready");
    expect(body.database.writable).to.equal(true);
    expect(body.worker.fresh).to.equal(true);

    const root = await fetch(`${f.url}/`);
    expect(await root.text()).to.equal("Ollama is running");

    // Heartbeats keep coming, and keep the worker fresh past the stale bound (1 s here).
    const beats = () => worker.logs().filter((l) => l.message === "heartbeat").length;
    await worker.waitForLine(() => beats() >= 15, 5000);
    expect(worker.logs().some((l) => l.message === "worker heartbeat failed")).to.equal(false);
    expect((await fetch(`${f.url}/readyz`)).status).to.equal(200);
  });

  it("runs exactly one active worker per database; the standby takes over when the active one is killed", async () => {
    const f = await foreman();
    const first = f.startWorker({}, "worker-1");
    await first.waitForLog("active worker");
    const second = f.startWorker({}, "worker-2");
    const standby = await second.waitForLog("waits as a standby");
    expect(standby.level).to.equal("warn");
    expect(standby.active_pid).to.equal(first.child.pid);
    expect(second.logs().some((l) => l.message === "active worker")).to.equal(false);

    await first.kill("SIGKILL");
    // The killed worker's pid is dead on this host, so the standby need not wait out the stale bound.
    const took = await second.waitForLog("active worker");
    expect((took.took_over_from as { pid: number }).pid).to.equal(first.child.pid);
  });

  it("hands the lease over at once on SIGTERM and exits 0", async () => {
    const f = await foreman({ env: { FOREMAN_WORKER_STALE_MS: "60000", FOREMAN_HEARTBEAT_MS: "100" } });
    const first = f.startWorker({}, "worker-1");
    await first.waitForLog("active worker");
    const second = f.startWorker({}, "worker-2");
    await second.waitForLog("waits as a standby");
    const exit = await first.kill("SIGTERM");
    expect(exit.code).to.equal(0);
    expect(first.logs().some((l) => l.message === "stopped cleanly")).to.equal(true);
    await second.waitForLog("active worker", 5000);
  });

  it("survives kill -9 of both processes: consistent database, migrations applied once", async () => {
    const dataDir = tempDataDir();
    for (let round = 0; round < 3; round++) {
      const f = await foreman({ dataDir });
      const gateway = await f.startGateway();
      const worker = f.startWorker();
      await worker.waitForLog("active worker");
      if (round === 0) {
        expect(
          gateway.logs().some((l) => l.message === "database migrated") ||
            worker.logs().some((l) => l.message === "database migrated"),
        ).to.equal(true);
      } else {
        expect([...gateway.logs(), ...worker.logs()].some((l) => l.message === "database migrated")).to.equal(false);
      }
      await Promise.all([gateway.kill("SIGKILL"), worker.kill("SIGKILL")]);
    }
    const db = retainNativeHandles(new Database(path.join(dataDir, "foreman.db")));
    try {
      expect(db.pragma("integrity_check", { simple: true })).to.equal("ok");
      const versions = db.prepare("SELECT version FROM schema_migrations").all();
      expect(versions).to.deep.equal(MIGRATIONS.map((m) => ({ version: m.version })));
      expect(db.pragma("journal_mode", { simple: true })).to.equal("wal");
    } finally {
      db.close();
    }
  });

  it("gateway stops cleanly on SIGTERM", async () => {
    const f = await foreman();
    const gateway = await f.startGateway();
    const exit = await gateway.kill("SIGTERM");
    expect(exit.code).to.equal(0);
    expect(gateway.logs().some((l) => l.message === "stopped cleanly")).to.equal(true);
  });

  for (const [name, entry] of [
    ["gateway", ENTRY.gateway],
    ["worker", ENTRY.worker],
  ] as const) {
    it(`${name}: a bad FOREMAN_* value gives one clear line and exit code 2`, async () => {
      const f = await foreman();
      const p = new Proc(name, entry, { ...f.env, FOREMAN_PORT: "not-a-port", FOREMAN_LOG_LEVEL: "loud" });
      const exit = await p.exited;
      expect(exit.code).to.equal(2);
      expect(p.lines).to.have.length(1);
      expect(p.lines[0]).to.match(/FOREMAN_(PORT|LOG_LEVEL) .*example: FOREMAN_(PORT|LOG_LEVEL)=/);
    });
  }

  it("never prints a secret when its value is bad", async () => {
    const f = await foreman();
    const p = new Proc("gateway", ENTRY.gateway, { ...f.env, FOREMAN_API_TOKEN: "short-secret" });
    const exit = await p.exited;
    expect(exit.code).to.equal(2);
    expect(p.lines.join("\n")).to.include("FOREMAN_API_TOKEN").and.not.include("short-secret");
  });

  it("never logs a configured secret", async () => {
    const token = "gateway-api-token-0123456789";
    const f = await foreman({ env: { FOREMAN_API_TOKEN: token, FOREMAN_OLLAMA_TOKEN: "ollama-secret-token" } });
    const gateway = await f.startGateway();
    const worker = f.startWorker();
    await worker.waitForLog("active worker");
    const unauthorized = await fetch(`${f.url}/api/tags`);
    expect(unauthorized.status).to.equal(401);
    await Promise.all([gateway.kill(), worker.kill()]);
    const all = [...gateway.lines, ...worker.lines].join("\n");
    expect(all).to.include("[redacted]");
    expect(all).to.not.include(token).and.not.include("ollama-secret-token");
  });
});
