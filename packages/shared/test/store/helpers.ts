import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const tempDirs: string[] = [];

// A root hook: the temp directories of every store test go when the run ends.
after(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDbPath(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-store-"));
  tempDirs.push(dir);
  return path.join(dir, "foreman.db");
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
