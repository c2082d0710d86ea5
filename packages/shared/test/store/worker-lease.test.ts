import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { openDatabase } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { createLeaseCheck, createWorkerLeaseStore, LeaseLostError } from "../../src/store/worker-lease.js";
import { fakeClock, tempDbPath } from "./helpers.js";

describe("store/worker-lease", () => {
  const a = { workerId: "A", pid: 1001, hostname: "host-1" };
  const b = { workerId: "B", pid: 1002, hostname: "host-1" };
  const remote = { workerId: "C", pid: 1001, hostname: "host-2" };

  const opened: Array<{ db: ReturnType<typeof openDatabase>; dbPath: string }> = [];
  afterEach(() => {
    for (const { db, dbPath } of opened.splice(0)) {
      db.close();
      fs.rmSync(path.dirname(dbPath), { recursive: true, force: true });
    }
  });

  function setup(alive: Set<number> = new Set([1001, 1002])) {
    const dbPath = tempDbPath();
    const db = openDatabase({ path: dbPath });
    opened.push({ db, dbPath });
    migrate(db);
    const clock = fakeClock();
    const lease = createWorkerLeaseStore(db, { staleMs: 1000, now: clock.now, isAlive: (pid) => alive.has(pid) });
    return { db, clock, lease, alive };
  }

  it("grants a free lease and refuses a second live worker", () => {
    const { lease } = setup();
    expect(lease.tryAcquire(a)).to.deep.include({ acquired: true, previous: null });
    const second = lease.tryAcquire(b);
    expect(second.acquired).to.equal(false);
    expect(second.acquired === false && second.holder.workerId).to.equal("A");
  });

  it("lets a standby take a lease whose heartbeat is stale", () => {
    const { lease, clock } = setup();
    lease.tryAcquire(a);
    clock.advance(1000);
    expect(lease.tryAcquire(remote).acquired).to.equal(false);
    clock.advance(1);
    expect(lease.tryAcquire(remote).acquired).to.equal(true);
    // The old holder learns it lost the lease on its next beat.
    expect(lease.heartbeat("A")).to.equal(false);
    expect(lease.heartbeat("C")).to.equal(true);
  });

  it("keeps a lease fresh while its holder beats", () => {
    const { lease, clock } = setup();
    lease.tryAcquire(a);
    for (let i = 0; i < 5; i++) {
      clock.advance(900);
      expect(lease.heartbeat("A", "job-1")).to.equal(true);
      expect(lease.tryAcquire(remote).acquired).to.equal(false);
    }
    expect(lease.holder()).to.include({ workerId: "A", currentJobId: "job-1" });
    expect(lease.isFresh(lease.holder())).to.equal(true);
  });

  it("takes over at once from a dead process on the same host", () => {
    const { lease, alive } = setup();
    lease.tryAcquire(a);
    alive.delete(1001);
    const result = lease.tryAcquire(b);
    expect(result.acquired).to.equal(true);
    expect(result.acquired && result.previous?.workerId).to.equal("A");
  });

  it("takes over at once from its own pid left by a previous life (container restart)", () => {
    const { lease } = setup();
    lease.tryAcquire(a);
    expect(lease.tryAcquire({ workerId: "A2", pid: 1001, hostname: "host-1" }).acquired).to.equal(true);
  });

  it("does not judge liveness of a pid on another host", () => {
    const { lease } = setup(new Set());
    lease.tryAcquire(remote);
    expect(lease.tryAcquire(b).acquired).to.equal(false);
  });

  it("release frees the lease for the next worker", () => {
    const { lease } = setup();
    lease.tryAcquire(a);
    lease.release("B");
    expect(lease.holder()?.workerId).to.equal("A");
    lease.release("A");
    expect(lease.holder()).to.equal(null);
    expect(lease.tryAcquire(b).acquired).to.equal(true);
  });
});

describe("store/worker-lease: what the heartbeat reports", () => {
  it("records the current job and the resident model with each beat", () => {
    const dbPath = tempDbPath();
    const db = openDatabase({ path: dbPath });
    migrate(db);
    const lease = createWorkerLeaseStore(db, { staleMs: 1000 });
    lease.tryAcquire({ workerId: "A", pid: 1, hostname: "h" });
    const resident = { model: "qwen3:8b", runnerOptions: "num_ctx=8192" };
    expect(lease.heartbeat("A", "job-9", resident)).to.equal(true);
    expect(lease.holder()).to.deep.include({ currentJobId: "job-9", resident });
    db.close();
    fs.rmSync(path.dirname(dbPath), { recursive: true, force: true });
  });

  it("records several resident load keys, most recent first, and how many the worker keeps", () => {
    const dbPath = tempDbPath();
    const db = openDatabase({ path: dbPath });
    migrate(db);
    const lease = createWorkerLeaseStore(db, { staleMs: 1000 });
    lease.tryAcquire({ workerId: "A", pid: 1, hostname: "h" });
    expect(lease.holder(), "nothing reported yet").to.deep.include({ resident: null, workerSlots: 1 });
    const resident = [
      { model: "qwen3:8b", runnerOptions: "" },
      { model: "llama3.2:latest", runnerOptions: "num_ctx=8192" },
    ];
    expect(lease.heartbeat("A", null, resident, 2)).to.equal(true);
    expect(lease.holder()).to.deep.include({ resident, workerSlots: 2 });
    lease.heartbeat("A", null, [resident[1]!], 2);
    expect(lease.holder(), "one left: reported as the one key").to.deep.include({ resident: resident[1] });
    db.close();
    fs.rmSync(path.dirname(dbPath), { recursive: true, force: true });
  });
});

describe("store/worker-lease: the one lease check", () => {
  it("holds only for the current holder; assertHeld throws LeaseLostError naming the worker and the job", () => {
    const dbPath = tempDbPath();
    const db = openDatabase({ path: dbPath });
    migrate(db);
    const lease = createWorkerLeaseStore(db, { staleMs: 1000 });
    const check = createLeaseCheck(db);
    expect(check.holds("A"), "nobody holds it").to.equal(false);
    lease.tryAcquire({ workerId: "A", pid: 1, hostname: "h" });
    expect(check.holds("A")).to.equal(true);
    expect(check.holds("B")).to.equal(false);
    expect(() => check.assertHeld("A", "job-1")).to.not.throw();
    let thrown: unknown;
    try {
      check.assertHeld("B", "job-1");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(LeaseLostError);
    expect(thrown).to.include({ workerId: "B", jobId: "job-1" });
    expect((thrown as Error).message).to.match(/job job-1 left as it is/);
    lease.release("A");
    expect(() => check.assertHeld("A", null)).to.throw(LeaseLostError, /nothing claimed/);
    db.close();
    fs.rmSync(path.dirname(dbPath), { recursive: true, force: true });
  });
});
