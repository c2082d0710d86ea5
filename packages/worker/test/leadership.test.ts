import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { openStore, type Store } from "@foreman/shared";
import { expect } from "chai";
import { createLeadership } from "../src/leadership.js";
import { harness, type LogLine } from "./harness.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../..");

/** Another worker process running the leadership alone, whose log lines the test can wait for. */
function startWorkerProcess(dbPath: string, workerId: string) {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", path.join(HERE, "fixtures/leadership-process.ts"), dbPath, workerId, "20"],
    { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(JSON.parse(line) as LogLine);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    pid: child.pid!,
    lines,
    exited,
    waitFor(match: RegExp): Promise<LogLine> {
      return new Promise((resolve) => {
        const check = () => {
          const line = lines.find((l) => match.test(l.message));
          if (!line) return;
          waiters.delete(check);
          resolve(line);
        };
        waiters.add(check);
        check();
      });
    },
    stop: () => child.stdin!.write("stop\n"),
    kill: () => child.kill("SIGKILL"),
  };
}

describe("leadership", () => {
  const h = harness();

  function counted() {
    const calls = { active: 0, lost: 0 };
    return { calls, onActive: () => calls.active++, onLost: () => calls.lost++ };
  }

  describe("two worker processes on one database", function () {
    // Starting a TypeScript process takes seconds, and many times that on a loaded machine: a wide bound
    // for the failure case only, the tests themselves wait on the processes' log lines.
    this.timeout(120_000);
    let other: ReturnType<typeof startWorkerProcess> | undefined;
    afterEach(async () => {
      if (other) {
        other.kill();
        await other.exited;
      }
      other = undefined;
    });

    it("the second stays a standby, saying so, until the first stops; then it takes over", async () => {
      // A starved process must not look stale to the other: staleness is not what this test is about.
      const world = h.world({ workerStaleMs: 600_000 });
      const dbPath = path.join(world.dataDir, "foreman.db");
      world.store.workerLease.release(world.workerId);
      const { calls, onActive, onLost } = counted();
      const first = createLeadership({
        store: world.store,
        logger: world.log.logger,
        heartbeatMs: 20,
        workerId: "first",
        onActive,
        onLost,
      });
      first.start();
      h.defer(() => first.stop());
      expect(first.isActive()).to.equal(true);
      expect(calls).to.deep.equal({ active: 1, lost: 0 });

      other = startWorkerProcess(dbPath, "second");
      const standby = await other.waitFor(/waits as a standby/);
      expect(standby).to.include({ active_pid: process.pid, worker_id: "second" });
      expect(world.store.workerLease.holder()?.workerId).to.equal("first");
      expect(other.lines.map((l) => l.message)).to.not.include("onActive");

      first.stop();
      expect(first.isActive()).to.equal(false);
      await other.waitFor(/^onActive$/);
      expect(world.store.workerLease.holder()).to.include({ workerId: "second", pid: other.pid });
      expect(calls, "stopping is not losing").to.deep.equal({ active: 1, lost: 0 });

      // Now the first is the standby: it does not take the live second's lease.
      first.runOnce();
      expect(first.isActive()).to.equal(false);
      expect(await world.log.waitFor(/waits as a standby/)).to.include({ active_pid: other.pid });
      other.stop();
      expect(await other.exited).to.equal(0);
      first.runOnce();
      expect(first.isActive()).to.equal(true);
      expect(calls.active).to.equal(2);
    });

    it("takes over at once from a worker process that was killed", async () => {
      const world = h.world();
      world.store.workerLease.release(world.workerId);
      other = startWorkerProcess(path.join(world.dataDir, "foreman.db"), "doomed");
      await other.waitFor(/^onActive$/);
      other.kill();
      await other.exited;
      const { calls, onActive, onLost } = counted();
      const survivor = createLeadership({
        store: world.store,
        logger: world.log.logger,
        heartbeatMs: 60_000,
        workerId: "survivor",
        onActive,
        onLost,
      });
      survivor.runOnce();
      expect(survivor.isActive(), "no need to wait out the stale period").to.equal(true);
      expect(calls.active).to.equal(1);
      expect(await world.log.waitFor("active worker")).to.deep.include({
        took_over_from: { pid: other.pid, hostname: os.hostname() },
      });
    });
  });

  describe("in one process, with a hand-moved clock", () => {
    let store: Store;
    let t = 1_700_000_000_000;
    const now = () => t;
    function setup() {
      const world = h.world();
      store = openStore({ dbPath: path.join(world.dataDir, "foreman.db"), now, workerStaleMs: 1000 });
      h.defer(() => store.close());
      store.workerLease.release(world.workerId);
      return world;
    }

    it("calls onLost once when another worker took over a lease it let go stale, then stands by", async () => {
      const world = setup();
      const { calls, onActive, onLost } = counted();
      const me = createLeadership({
        store,
        logger: world.log.logger,
        heartbeatMs: 60_000,
        workerId: "me",
        onActive,
        onLost,
      });
      me.runOnce();
      expect(me.isActive()).to.equal(true);
      // This worker stalled past the stale bound; a worker on another host took the lease over.
      t += 1001;
      expect(store.workerLease.tryAcquire({ workerId: "other", pid: 1, hostname: "elsewhere" }).acquired).to.equal(
        true,
      );
      me.runOnce();
      expect(me.isActive()).to.equal(false);
      expect(calls).to.deep.equal({ active: 1, lost: 1 });
      expect(await world.log.waitFor(/^lost the worker lease/)).to.include({ level: "error", worker_id: "me" });
      me.runOnce();
      me.runOnce();
      expect(calls).to.deep.equal({ active: 1, lost: 1 });
      await world.log.waitFor(/waits as a standby/);
      expect(
        world.log.lines.filter((l) => /waits as a standby/.test(l.message)),
        "said once",
      ).to.have.length(1);
      expect(store.workerLease.holder()?.workerId).to.equal("other");
    });

    it("reports the current job and resident model with each beat", () => {
      const world = setup();
      let job: string | null = null;
      const me = createLeadership({
        store,
        logger: world.log.logger,
        heartbeatMs: 60_000,
        workerId: "me",
        currentJobId: () => job,
        resident: () => ({ model: "qwen3:8b", runnerOptions: "num_ctx=8192" }),
      });
      me.runOnce();
      job = "job-1";
      t += 500;
      me.runOnce();
      expect(store.workerLease.holder()).to.deep.include({
        workerId: "me",
        currentJobId: "job-1",
        resident: { model: "qwen3:8b", runnerOptions: "num_ctx=8192" },
        heartbeatAt: t,
      });
    });

    it("lets the lease go when it cannot start as the active worker, and tries again on the next beat", async () => {
      const world = setup();
      let fail = true;
      let started = 0;
      const me = createLeadership({
        store,
        logger: world.log.logger,
        heartbeatMs: 60_000,
        workerId: "me",
        onActive: () => {
          if (fail) throw new Error("recovery failed");
          started++;
        },
      });
      me.runOnce();
      expect(me.isActive()).to.equal(false);
      expect(store.workerLease.holder(), "a standby may take it meanwhile").to.equal(null);
      expect(await world.log.waitFor(/^could not start as the active worker/)).to.include({ level: "error" });
      fail = false;
      me.runOnce();
      expect(me.isActive()).to.equal(true);
      expect(started).to.equal(1);
    });

    it("survives a database it cannot reach on a beat", async () => {
      const world = setup();
      const me = createLeadership({ store, logger: world.log.logger, heartbeatMs: 60_000, workerId: "me" });
      me.runOnce();
      store.close();
      expect(() => me.runOnce()).to.not.throw();
      expect(await world.log.waitFor("worker heartbeat failed")).to.include({ level: "warn" });
    });
  });
});
