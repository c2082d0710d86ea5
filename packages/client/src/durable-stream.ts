import { delay } from "./deadline.js";
import { ForemanHttpError, ForemanProtocolError, JobRestartedError, JobStreamError } from "./errors.js";
import type { HttpTransport } from "./http.js";
import { isTransient, type RetryPolicy, retryDelayMs, withRetries } from "./retry.js";
import { isTerminalState, type Job, type JobChunk } from "./types.js";

export interface DurableStreamDeps {
  http: HttpTransport;
  retry: RetryPolicy;
  getJob(id: string, signal: AbortSignal | undefined): Promise<Job>;
}

/**
 * Follows `GET /jobs/<id>/stream` and survives the connection dropping: it reattaches with
 * `?after=<chunks received>&attempt=<X-Foreman-Attempt>` and the server goes on from the next chunk, so
 * the caller sees every chunk exactly once. Only lines that arrived whole count (a line cut by the drop is
 * read again), which is why the count is a count of parsed lines.
 *
 * A job whose attempt was cut short and requeued generates its answer anew: once chunks of the old attempt
 * were delivered, reattaching answers 409 and this throws a JobRestartedError instead of splicing two
 * answers together. Before any chunk was delivered the new attempt is simply followed.
 *
 * How it knows it is finished: a chunk with `done: true` (Ollama's last), an `{"error"}` line (the job
 * failed or was canceled: a JobStreamError), or, for a response that ended with neither, the job's state.
 */
export async function* followJobStream<T extends JobChunk>(
  deps: DurableStreamDeps,
  id: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<T, void, undefined> {
  const { http, retry } = deps;
  const path = `/jobs/${encodeURIComponent(id)}/stream`;
  let attempt: number | null = null;
  let received = 0;
  // Reattaches in a row that brought no chunk: backed off and bounded like any retry.
  let idle = 0;
  // Set once the job is known to have ended: one more reattach settles whether the chunks received are
  // all of its answer (nothing more comes) or belong to an attempt that was superseded (409).
  let endedJobChecked = false;
  for (;;) {
    let current: number | null = null;
    let progressed = false;
    let finalChunk = false;
    try {
      for await (const line of http.ndjson({
        method: "GET",
        path,
        query: { after: received, attempt: received > 0 && attempt !== null ? attempt : undefined },
        signal,
        onResponse: (response) => {
          current = attemptHeader(response);
          if (received === 0) attempt = current;
        },
      })) {
        if (isErrorLine(line)) throw new JobStreamError(id, line.error);
        received++;
        progressed = true;
        if ((line as { done?: unknown }).done === true) finalChunk = true;
        yield line as T;
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof ForemanHttpError && error.status === 409 && received > 0) {
        throw new JobRestartedError({ jobId: id, attempt, currentAttempt: current, chunksReceived: received });
      }
      // The last chunk is in: what broke was only the end of the response.
      if (finalChunk) return;
      if (!isTransient(error)) throw error;
      idle = progressed ? 0 : idle + 1;
      if (idle > retry.retries) throw error;
      if (idle > 0) await delay(retryDelayMs(idle - 1, retry), signal);
      continue;
    }
    if (finalChunk) return;
    // The response ended cleanly without the job's end: the gateway shut down, or a later attempt began.
    if (progressed) {
      idle = 0;
      continue;
    }
    const job = await withRetries(() => deps.getJob(id, signal), retry, signal);
    if (isTerminalState(job.state)) {
      if (endedJobChecked) {
        if (job.state === "done") return;
        throw new JobStreamError(id, job.error ?? `job ${job.state}`);
      }
      endedJobChecked = true;
      continue;
    }
    idle++;
    if (idle > retry.retries) {
      throw new ForemanProtocolError(`the stream of job ${id} keeps ending before the job does (${idle} times)`);
    }
    await delay(retryDelayMs(idle - 1, retry), signal);
  }
}

function attemptHeader(response: Response): number | null {
  const value = response.headers.get("x-foreman-attempt");
  return value !== null && /^\d+$/.test(value) ? Number(value) : null;
}

export function isErrorLine(line: unknown): line is { error: string } {
  return typeof line === "object" && line !== null && typeof (line as { error?: unknown }).error === "string";
}
