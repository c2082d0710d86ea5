import path from "node:path";
import { makeTempDir } from "../../../../test/temp-dirs.js";

export function tempDbPath(): string {
  return path.join(makeTempDir("foreman-store-"), "foreman.db");
}

/** A clock tests move by hand, so time-based rules are checked without waiting. */
export function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}
