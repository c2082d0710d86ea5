import type { LeaseHolder } from "@foreman/shared";
import { expect } from "chai";
import { judgeWorkerHealth } from "../src/worker-health.js";

describe("worker-health", () => {
  const holder = (over: Partial<LeaseHolder> = {}): LeaseHolder => ({
    workerId: "w1",
    pid: 1,
    hostname: "c0ffee",
    acquiredAt: 0,
    heartbeatAt: 9_700,
    currentJobId: null,
    resident: null,
    workerSlots: 1,
    ...over,
  });

  const cases: Array<{ name: string; holder: LeaseHolder | null; fresh: boolean; healthy: boolean; says: string }> = [
    { name: "no lease yet", holder: null, fresh: false, healthy: false, says: "no worker has started yet" },
    {
      name: "active here",
      holder: holder(),
      fresh: true,
      healthy: true,
      says: "active worker: pid 1 in this container",
    },
    {
      name: "standby with a beating peer",
      holder: holder({ hostname: "other", pid: 7 }),
      fresh: true,
      healthy: true,
      says: "standby: the active worker is pid 7 on other",
    },
    {
      name: "stale here",
      holder: holder({ heartbeatAt: 1_000 }),
      fresh: false,
      healthy: false,
      says: "stale: last beat 9000 ms ago, from pid 1 in this container",
    },
    {
      name: "stale elsewhere",
      holder: holder({ hostname: "other", heartbeatAt: 1_000 }),
      fresh: false,
      healthy: false,
      says: "from pid 1 on other",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const health = judgeWorkerHealth(c.holder, { fresh: c.fresh, hostname: "c0ffee", now: 10_000 });
      expect(health.healthy).to.equal(c.healthy);
      expect(health.message).to.include(c.says);
    });
  }
});
