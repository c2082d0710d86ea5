import fs from "node:fs";
import path from "node:path";

/**
 * Cross-process wake-ups without busy polling: a gateway that commits a job (or a cancel) touches
 * `FOREMAN_DATA_DIR/wake`; the worker watches that file (inotify on Linux) and claims at once. The watch is
 * an accelerator only: the worker also polls slowly, so a lost event delays a job, never loses it.
 */
export function wakePath(dataDir: string): string {
  return path.join(dataDir, "wake");
}

export function createWaker(dataDir: string) {
  const file = wakePath(dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  fs.closeSync(fs.openSync(file, "a"));
  return {
    /** Signals the worker; never throws (a failed touch only costs the fallback poll's delay). */
    wake(): void {
      try {
        const now = new Date();
        fs.utimesSync(file, now, now);
      } catch {
        // The fallback poll picks the job up.
      }
    },
  };
}

/** Calls `onWake` whenever the wake file is touched; returns the function that stops watching. */
export function watchWakes(dataDir: string, onWake: () => void): () => void {
  const file = wakePath(dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  fs.closeSync(fs.openSync(file, "a"));
  const watcher = fs.watch(file, { persistent: false }, () => onWake());
  watcher.on("error", () => undefined);
  return () => watcher.close();
}
