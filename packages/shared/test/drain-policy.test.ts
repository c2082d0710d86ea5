import { expect } from "chai";
import { drainOrder, pickNext, type QueuedJobRef } from "../src/drain-policy.js";

const T0 = 1_000_000;
const STARVE = 60_000;
// Queue entries: [id, model, age in ms at "now"]
const q = (...entries: Array<[string, string, number]>): QueuedJobRef[] =>
  entries.map(([id, model, age]) => ({ id, model, createdAt: T0 - age }));

describe("drain-policy", () => {
  const cases: Array<{ name: string; queue: QueuedJobRef[]; resident: string | null; expected: string | null }> = [
    { name: "empty queue", queue: [], resident: "a", expected: null },
    { name: "no resident model: oldest", queue: q(["1", "b", 30], ["2", "a", 20]), resident: null, expected: "1" },
    {
      name: "resident model first",
      queue: q(["1", "b", 30], ["2", "a", 20], ["3", "a", 10]),
      resident: "a",
      expected: "2",
    },
    {
      name: "nothing for the resident model: oldest",
      queue: q(["1", "b", 30], ["2", "c", 20]),
      resident: "a",
      expected: "1",
    },
    {
      name: "starvation bound reached: oldest wins over the resident model",
      queue: q(["1", "b", STARVE], ["2", "a", 20]),
      resident: "a",
      expected: "1",
    },
    {
      name: "just under the bound: the resident model still wins",
      queue: q(["1", "b", STARVE - 1], ["2", "a", 20]),
      resident: "a",
      expected: "2",
    },
    { name: "oldest is the resident model", queue: q(["1", "a", 30], ["2", "b", 20]), resident: "a", expected: "1" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(pickNext(c.queue, c.resident, T0, STARVE)?.id ?? null).to.equal(c.expected);
    });
  }

  it("drains model by model: one switch per model instead of one per job", () => {
    const queue = q(["1", "a", 90], ["2", "b", 80], ["3", "a", 70], ["4", "c", 60], ["5", "b", 50], ["6", "a", 40]);
    const order = drainOrder(queue, null, T0, STARVE).map((j) => j.id);
    expect(order).to.deep.equal(["1", "3", "6", "2", "5", "4"]);
    const fifoSwitches = queue.filter((j, i) => i === 0 || queue[i - 1]!.model !== j.model).length;
    const drained = drainOrder(queue, null, T0, STARVE);
    const drainSwitches = drained.filter((j, i) => i === 0 || drained[i - 1]!.model !== j.model).length;
    expect([fifoSwitches, drainSwitches]).to.deep.equal([6, 3]);
  });
});
