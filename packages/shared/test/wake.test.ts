import { expect } from "chai";
import { makeTempDir } from "../../../test/temp-dirs.js";
import { createWaker, watchWakes } from "../src/wake.js";

describe("wake", () => {
  it("a waker's wake-up reaches the watcher of the same data folder", async () => {
    const dir = makeTempDir("foreman-wake-");
    let woken!: () => void;
    const wakeUp = new Promise<void>((resolve) => {
      woken = resolve;
    });
    const stop = watchWakes(dir, () => woken());
    try {
      createWaker(dir).wake();
      // No fallback here: only the file-system event can settle this before the test's timeout.
      await wakeUp;
    } finally {
      stop();
    }
  });

  it("a wake-up with nobody watching is dropped without an error", () => {
    const dir = makeTempDir("foreman-wake-");
    expect(() => createWaker(dir).wake()).not.to.throw();
  });
});
