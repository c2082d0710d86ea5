import fs from "node:fs";

export type DatabaseFileState = "ok" | "deleted" | "replaced";

export interface DatabaseFileWatch {
  /** Compares the file at the path with the one opened at start (one stat); the first loss is sticky. */
  check(): DatabaseFileState;
  /** The one-line explanation of a loss (null while the file is the one opened). */
  problem(): string | null;
  start(): void;
  stop(): void;
}

/**
 * SQLite keeps working on an open file that was deleted or replaced (an unlinked inode stays writable),
 * so a process that misses it goes on committing into a file no one else can see, while a newly started
 * gateway or worker creates a fresh one: the processes split onto different databases and accepted work
 * vanishes. This watch compares the path's identity (device and inode) with the file opened at start, on
 * a timer and whenever asked (readiness), and reports the first loss once.
 */
export function watchDatabaseFile(options: {
  path: string;
  intervalMs: number;
  onLost: (problem: string) => void;
}): DatabaseFileWatch {
  const opened = fs.statSync(options.path);
  let state: DatabaseFileState = "ok";
  let message: string | null = null;
  let timer: NodeJS.Timeout | undefined;

  function look(): DatabaseFileState {
    try {
      const now = fs.statSync(options.path);
      return now.dev === opened.dev && now.ino === opened.ino ? "ok" : "replaced";
    } catch (err) {
      // Only a missing file is a loss; a passing error (EIO, EMFILE) is looked at again next time.
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? "deleted" : "ok";
    }
  }

  function check(): DatabaseFileState {
    if (state !== "ok") return state;
    state = look();
    if (state !== "ok") {
      message = `database file ${options.path} was ${state} while foreman was running`;
      options.onLost(message);
    }
    return state;
  }

  return {
    check,
    problem: () => message,
    start() {
      if (timer) return;
      timer = setInterval(check, options.intervalMs);
      // A watch never keeps a process alive on its own.
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
