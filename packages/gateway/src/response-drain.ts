/**
 * The gateway's long-lived responses (synchronous streams, long polls, stream followers), so a shutdown
 * can end them on its own terms: each gets the grace period to finish by itself, then is ended by the
 * callback it registered (a sync stream with a final error line and its job canceled, since nobody will
 * read the rest; a long poll with the job as it stands; a follower simply, as it can reattach).
 */
export function createResponseDrain() {
  const open = new Set<() => void>();
  let emptied: (() => void) | null = null;

  return {
    /** Registers a response's forced end; call the returned function when the response ends by itself. */
    track(end: () => void): () => void {
      open.add(end);
      return () => {
        open.delete(end);
        if (open.size === 0) emptied?.();
      };
    },
    get size(): number {
      return open.size;
    },
    /** Waits up to `graceMs` for every tracked response to finish, then ends those still open. */
    async drain(graceMs: number): Promise<number> {
      if (open.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          emptied = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      emptied = null;
      const forced = [...open];
      open.clear();
      for (const end of forced) end();
      return forced.length;
    },
  };
}

export type ResponseDrain = ReturnType<typeof createResponseDrain>;
