import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * Every temporary directory a test makes, so none outlives the run: the root `afterAll` hook below (loaded
 * by .mocharc.json) removes what is left, whether the tests passed or failed, and a helper that knows its
 * directories are done (the e2e harness once its processes are stopped) may remove them earlier.
 */
const made = new Set<string>();

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes the given directories (default: every one made so far). */
export function removeTempDirs(dirs: Iterable<string> = made): void {
  for (const dir of [...dirs]) {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    made.delete(dir);
  }
}

/** Mocha root hooks (.mocharc.json `require`): the last word on cleanup, run after every suite. */
export const mochaHooks = {
  afterAll(): void {
    removeTempDirs();
  },
};
