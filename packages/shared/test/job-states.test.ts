import { expect } from "chai";
import { IllegalTransitionError } from "../src/errors.js";
import {
  assertTransition,
  canTransition,
  eventForState,
  isTerminal,
  JOB_EVENT_TYPES,
  JOB_STATES,
  type JobState,
} from "../src/job-states.js";

// The whole table, written out independently of the module, so a change to either is caught.
const LEGAL = new Set([
  "queued>loading",
  "queued>canceled",
  "loading>working",
  "loading>queued",
  "loading>failed",
  "loading>canceled",
  "working>done",
  "working>queued",
  "working>failed",
  "working>canceled",
]);

describe("job-states", () => {
  for (const from of JOB_STATES) {
    for (const to of JOB_STATES) {
      const legal = LEGAL.has(`${from}>${to}`);
      it(`${from} -> ${to} is ${legal ? "allowed" : "refused"}`, () => {
        expect(canTransition(from, to)).to.equal(legal);
        if (legal) {
          expect(() => assertTransition(from, to)).to.not.throw();
        } else {
          expect(() => assertTransition(from, to, "job-1"))
            .to.throw(IllegalTransitionError)
            .with.property("message", `illegal job transition ${from} -> ${to} for job job-1`);
        }
      });
    }
  }

  it("has exactly six states, three of them terminal", () => {
    expect([...JOB_STATES]).to.deep.equal(["queued", "loading", "working", "done", "failed", "canceled"]);
    expect(JOB_STATES.filter((s: JobState) => isTerminal(s))).to.deep.equal(["done", "failed", "canceled"]);
  });

  it("names one event per state", () => {
    expect(eventForState("working")).to.equal("job.working");
    expect(JOB_EVENT_TYPES).to.deep.equal([
      "job.queued",
      "job.loading",
      "job.working",
      "job.done",
      "job.failed",
      "job.canceled",
    ]);
  });
});
