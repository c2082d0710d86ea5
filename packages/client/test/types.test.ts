import { expect } from "chai";
import { isTerminalState, JOB_STATES, TERMINAL_JOB_STATES } from "../src/types.js";

describe("job states", () => {
  it("lists the states of SPEC §5.2 in order", () => {
    expect(JOB_STATES).to.deep.equal(["queued", "loading", "working", "done", "failed", "canceled"]);
  });

  it("done, failed and canceled are terminal; the others are not", () => {
    expect(TERMINAL_JOB_STATES).to.deep.equal(["done", "failed", "canceled"]);
    expect(JOB_STATES.filter(isTerminalState)).to.deep.equal(["done", "failed", "canceled"]);
  });
});
