import { expect } from "chai";
import { delay, startDeadline } from "../src/deadline.js";

function abortedWith(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

describe("startDeadline", () => {
  it("aborts with the caller's reason when the caller aborts", async () => {
    const caller = new AbortController();
    const deadline = startDeadline({ signal: caller.signal, timeoutMs: 10_000 });
    const reason = new Error("user gave up");
    caller.abort(reason);
    expect(await abortedWith(deadline.signal)).to.equal(reason);
    expect(deadline.timedOut).to.equal(false);
    deadline.dispose();
  });

  it("starts aborted when the caller's signal already is", () => {
    const deadline = startDeadline({ signal: AbortSignal.abort("before"), timeoutMs: 10 });
    expect(deadline.signal.aborted).to.equal(true);
    expect(deadline.signal.reason).to.equal("before");
    deadline.dispose();
  });

  it("aborts with what onTimeout builds when the time passes", async () => {
    const deadline = startDeadline({ timeoutMs: 5, onTimeout: () => new RangeError("too slow") });
    const reason = await abortedWith(deadline.signal);
    expect(reason).to.be.instanceOf(RangeError);
    expect(deadline.timedOut).to.equal(true);
    deadline.dispose();
  });

  it("has no clock without a positive finite timeout", () => {
    for (const timeoutMs of [undefined, 0, Number.POSITIVE_INFINITY]) {
      const deadline = startDeadline({ timeoutMs });
      expect(deadline.signal.aborted).to.equal(false);
      deadline.dispose();
    }
  });

  it("stopTimer keeps following the caller; dispose forgets it", async () => {
    const caller = new AbortController();
    const stopped = startDeadline({ signal: caller.signal, timeoutMs: 1 });
    stopped.stopTimer();
    const disposed = startDeadline({ signal: caller.signal, timeoutMs: 10_000 });
    disposed.dispose();
    caller.abort("now");
    expect(await abortedWith(stopped.signal)).to.equal("now");
    expect(stopped.timedOut).to.equal(false);
    expect(disposed.signal.aborted).to.equal(false);
    stopped.dispose();
  });
});

describe("delay", () => {
  it("resolves after the time", async () => {
    await delay(1);
  });

  it("rejects with the reason as soon as the signal aborts", async () => {
    const controller = new AbortController();
    const pending = delay(60_000, controller.signal);
    controller.abort("stop");
    expect(
      await pending.then(
        () => "resolved",
        (e: unknown) => e,
      ),
    ).to.equal("stop");
    expect(
      await delay(1, AbortSignal.abort("already")).then(
        () => "resolved",
        (e: unknown) => e,
      ),
    ).to.equal("already");
  });
});
