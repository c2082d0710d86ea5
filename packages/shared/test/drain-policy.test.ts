import { expect } from "chai";
import { drainOrder, pickNext, type QueuedJobRef, residentAfter } from "../src/drain-policy.js";
import type { LoadKey } from "../src/load-key.js";

const T0 = 1_000_000;
const STARVE = 60_000;
// Queue entries: [id, model, age in ms at "now", runner options ("" when not given)]
const q = (...entries: Array<[string, string, number, string?]>): QueuedJobRef[] =>
  entries.map(([id, model, age, runnerOptions = ""]) => ({ id, model, runnerOptions, createdAt: T0 - age }));
// A load key: "model" or "model num_ctx=8192" (the model, then its runner options after one space).
const k = (text: string | null): LoadKey | null => {
  if (text === null) return null;
  const [model, runnerOptions = ""] = text.split(" ");
  return { model: model!, runnerOptions };
};

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
    {
      name: "a name without its tag is the :latest model",
      queue: q(["1", "b:latest", 30], ["2", "a:latest", 20]),
      resident: "a",
      expected: "2",
    },
    {
      name: "the resident model with other runner options is another load: oldest",
      queue: q(["1", "b", 30], ["2", "a", 20, "num_ctx=2048"]),
      resident: "a num_ctx=8192",
      expected: "1",
    },
    {
      name: "the resident load key first: model and runner options",
      queue: q(["1", "a", 30, "num_ctx=2048"], ["2", "b", 25], ["3", "a", 20, "num_ctx=8192"]),
      resident: "a num_ctx=8192",
      expected: "3",
    },
    {
      name: "no runner options is not the same load as options naming a value",
      queue: q(["1", "a", 30, "num_ctx=2048"], ["2", "a", 20]),
      resident: "a",
      expected: "2",
    },
    {
      name: "starvation bound reached: oldest wins over the resident load key",
      queue: q(["1", "a", STARVE, "num_ctx=2048"], ["2", "a", 20, "num_ctx=8192"]),
      resident: "a num_ctx=8192",
      expected: "1",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(pickNext(c.queue, k(c.resident), T0, STARVE)?.id ?? null).to.equal(c.expected);
    });
  }

  it("drains load key by load key: one model with two num_ctx values costs two loads, not one per job", () => {
    const queue = q(
      ["1", "a", 90, "num_ctx=2048"],
      ["2", "b", 80],
      ["3", "a", 70, "num_ctx=8192"],
      ["4", "a", 60, "num_ctx=2048"],
      ["5", "b", 50],
      ["6", "a", 40, "num_ctx=8192"],
    );
    expect(drainOrder(queue, k("b"), T0, STARVE).map((j) => j.id)).to.deep.equal(["2", "5", "1", "4", "3", "6"]);
    expect(drainOrder(queue, k("a num_ctx=8192"), T0, STARVE).map((j) => j.id)).to.deep.equal([
      "3",
      "6",
      "1",
      "4",
      "2",
      "5",
    ]);
  });

  it("drains model by model: one switch per model instead of one per job", () => {
    const queue = q(["1", "a", 90], ["2", "b", 80], ["3", "a", 70], ["4", "c", 60], ["5", "b", 50], ["6", "a", 40]);
    const order = drainOrder(queue, null, T0, STARVE).map((j) => j.id);
    expect(order).to.deep.equal(["1", "3", "6", "2", "5", "4"]);
    const fifoSwitches = queue.filter((j, i) => i === 0 || queue[i - 1]!.model !== j.model).length;
    const drained = drainOrder(queue, null, T0, STARVE);
    const drainSwitches = drained.filter((j, i) => i === 0 || drained[i - 1]!.model !== j.model).length;
    expect([fifoSwitches, drainSwitches]).to.deep.equal([6, 3]);
  });

  it("follows the resident model whether or not its name carries the tag", () => {
    const queue = q(["1", "b:latest", 30], ["2", "a:latest", 20]);
    expect(drainOrder(queue, k("a"), T0, STARVE).map((j) => j.id)).to.deep.equal(["2", "1"]);
  });
});

describe("drain-policy: drainOrder equals repeated pickNext", () => {
  it("on random queues, resident models and starvation bounds", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const size = Math.floor(rand() * 15);
      let age = 1000;
      const queue = Array.from({ length: size }, (_, i) => {
        age -= Math.floor(rand() * 100);
        return {
          id: String(i).padStart(3, "0"),
          model: ["a", "b", "c", "d"][Math.floor(rand() * 4)]!,
          runnerOptions: ["", "", "num_ctx=2048", "num_ctx=8192"][Math.floor(rand() * 4)]!,
          createdAt: T0 - age,
        };
      });
      const resident =
        rand() < 0.3
          ? null
          : {
              model: ["a", "b", "c", "d"][Math.floor(rand() * 4)]!,
              runnerOptions: ["", "num_ctx=2048", "num_ctx=8192"][Math.floor(rand() * 3)]!,
            };
      const starvation = Math.floor(rand() * 1200);
      const naive: string[] = [];
      const rest = [...queue];
      let current: LoadKey | null = resident;
      while (rest.length > 0) {
        const next = pickNext(rest, current, T0, starvation)!;
        naive.push(next.id);
        rest.splice(rest.indexOf(next), 1);
        current = next;
      }
      expect(
        drainOrder(queue, resident, T0, starvation).map((j) => j.id),
        `round ${round}`,
      ).to.deep.equal(naive);
    }
  });
});

describe("drain-policy: a target with more worker slots holds several load keys (ADR 0027)", () => {
  const keys = (...texts: string[]) => texts.map((t) => k(t)!);
  const cases: Array<{ name: string; queue: QueuedJobRef[]; resident: string[]; expected: string | null }> = [
    {
      name: "the most recently used resident load key first",
      queue: q(["1", "c", 30], ["2", "b", 20], ["3", "a", 10]),
      resident: ["a", "b"],
      expected: "3",
    },
    {
      name: "nothing for the most recent one: the next resident load key's oldest job",
      queue: q(["1", "c", 30], ["2", "b", 20], ["3", "b", 10]),
      resident: ["a", "b"],
      expected: "2",
    },
    {
      name: "nothing for any resident load key: oldest",
      queue: q(["1", "c", 30], ["2", "d", 20]),
      resident: ["a", "b"],
      expected: "1",
    },
    {
      name: "a resident model with other runner options is not resident: it would reload",
      queue: q(["1", "c", 30], ["2", "b", 20, "num_ctx=2048"]),
      resident: ["a", "b num_ctx=8192"],
      expected: "1",
    },
    {
      name: "starvation bound reached: oldest wins over every resident load key",
      queue: q(["1", "c", STARVE], ["2", "a", 20], ["3", "b", 10]),
      resident: ["a", "b"],
      expected: "1",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(pickNext(c.queue, keys(...c.resident), T0, STARVE)?.id ?? null).to.equal(c.expected);
    });
  }

  it("keeps the resident list the worker keeps: newest first, one key per model, the least recent dropped", () => {
    const text = (list: LoadKey[]) => list.map((x) => `${x.model}${x.runnerOptions ? ` ${x.runnerOptions}` : ""}`);
    expect(text(residentAfter(null, keys("a", "b"), 2))).to.deep.equal(["b", "a"]);
    expect(text(residentAfter(keys("a", "b"), keys("c"), 2)), "b stays, a made room").to.deep.equal(["c", "a"]);
    expect(text(residentAfter(keys("a", "b"), keys("b num_ctx=8192"), 2)), "reloaded in place").to.deep.equal([
      "b num_ctx=8192",
      "a",
    ]);
    expect(text(residentAfter(keys("a", "b"), keys("b"), 2)), "used again: most recent").to.deep.equal(["b", "a"]);
    expect(text(residentAfter(k("a"), keys("b"), 1)), "one slot: the two-slot target").to.deep.equal(["b"]);
    expect(text(residentAfter(keys("a", "b"), [], 1)), "no answer: unchanged").to.deep.equal(["a", "b"]);
  });

  it("an agent alternating two models behind a batch: the batch drains group by group, then the agent loads twice", () => {
    // The batch (three models, two num_ctx each, round-robin) was queued first; the agent's call came after.
    const batch = ["a 1", "a 2", "b 1", "b 2", "c 1", "c 2"];
    const queue = q(
      ...Array.from({ length: 12 }, (_, i): [string, string, number, string] => {
        const [model, ctx] = batch[i % 6]!.split(" ");
        return [String(i).padStart(2, "0"), model!, 100 - i, `num_ctx=${ctx}`];
      }),
      ["12", "b", 50],
    );
    let resident: LoadKey[] = [];
    let loads = 0;
    const rest = [...queue];
    const run = (job: QueuedJobRef) => {
      if (!resident.some((r) => r.model === job.model && r.runnerOptions === job.runnerOptions)) loads++;
      resident = residentAfter(resident, [job], 2);
      rest.splice(rest.indexOf(job), 1);
    };
    while (rest.length > 0) run(pickNext(rest, resident, T0, STARVE)!);
    expect(loads, "one per batch group, then the agent's model").to.equal(7);
    // Then the agent alternates b and a, each call waiting for the last: with two worker slots, one load for
    // a and none after; with one slot it would load on every call.
    for (let turn = 0; turn < 4; turn++) {
      for (const model of ["a", "b"]) {
        rest.push(...q([`t${turn}${model}`, model, 0]));
        run(pickNext(rest, resident, T0, STARVE)!);
      }
    }
    expect(loads).to.equal(8);
  });

  it("drainOrder equals repeated pickNext with the resident list following each pick, on random queues", () => {
    let seed = 19;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const models = ["a", "b", "c", "d"];
    const options = ["", "", "num_ctx=2048", "num_ctx=8192"];
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    for (let round = 0; round < 300; round++) {
      const slots = 1 + Math.floor(rand() * 3);
      let age = 1000;
      const queue = Array.from({ length: Math.floor(rand() * 15) }, (_, i) => {
        age -= Math.floor(rand() * 100);
        return {
          id: String(i).padStart(3, "0"),
          model: pick(models),
          runnerOptions: pick(options),
          createdAt: T0 - age,
        };
      });
      const resident = residentAfter(
        null,
        Array.from({ length: Math.floor(rand() * 4) }, () => ({ model: pick(models), runnerOptions: pick(options) })),
        slots,
      );
      const starvation = Math.floor(rand() * 1200);
      const naive: string[] = [];
      const rest = [...queue];
      let current: LoadKey[] = resident;
      while (rest.length > 0) {
        const next = pickNext(rest, current, T0, starvation)!;
        naive.push(next.id);
        rest.splice(rest.indexOf(next), 1);
        current = residentAfter(current, [next], slots);
      }
      expect(
        drainOrder(queue, resident, T0, starvation, slots).map((j) => j.id),
        `round ${round}`,
      ).to.deep.equal(naive);
    }
  });
});
