import fs from "node:fs";
import { isTerminal, type JobRecord, relayPath, type Store } from "@foreman/shared";

/**
 * Long poll: resolves with the job once it has ended, or with its current state after `timeoutMs`. Wakes on
 * the job's relay changing (its `#end` line is the last write) and re-reads the job at most every
 * `pollMs` otherwise, so a job ended by another process is noticed even without a file event.
 */
export function waitForJobEnd(
  store: Store,
  dataDir: string,
  jobId: string,
  timeoutMs: number,
  pollMs: number,
  signal?: AbortSignal,
): Promise<JobRecord | null> {
  return new Promise((resolve) => {
    let watcher: fs.FSWatcher | null = null;
    let poll: NodeJS.Timeout | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      watcher?.close();
      clearTimeout(deadline);
      clearInterval(poll);
      signal?.removeEventListener("abort", finish);
      resolve(store.jobs.get(jobId));
    };
    // The state alone: a long poll must not re-read and parse the job's request on every wake-up.
    const check = () => {
      const state = store.jobs.state(jobId);
      if (state === null || isTerminal(state)) finish();
    };
    const deadline = setTimeout(finish, timeoutMs);
    signal?.addEventListener("abort", finish);
    try {
      watcher = fs.watch(relayPath(dataDir, jobId), check);
      watcher.on("error", () => undefined);
    } catch {
      // No relay file (pruned or never created): the poll below still notices the end.
    }
    poll = setInterval(check, pollMs);
    check();
  });
}
