import { expect } from "chai";
import {
  ForemanClientError,
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  ForemanRequestError,
  ForemanTimeoutError,
  JobFailedError,
  JobStreamError,
  JobTimeoutError,
} from "../src/errors.js";
import type { Job } from "../src/types.js";

function job(overrides: Partial<Job>): Job {
  return {
    id: "01JDQ5Z9X1ABCDEFGHJKMNPQRS",
    kind: "chat",
    api: "ollama",
    mode: "async",
    model: "llama3",
    state: "failed",
    created_at: "2025-01-01T00:00:00.000Z",
    queued_at: "2025-01-01T00:00:00.000Z",
    loading_at: null,
    working_at: null,
    ended_at: "2025-01-01T00:00:01.000Z",
    attempts: 1,
    max_attempts: 3,
    error: null,
    metadata: null,
    metrics: null,
    result: null,
    artifacts: [],
    webhook: null,
    ...overrides,
  };
}

describe("errors", () => {
  it("every client error is a ForemanClientError and an Error, with its own name", () => {
    const errors = [
      new ForemanHttpError({ status: 404, error: "job x not found", method: "GET", url: "u", jobId: null }),
      new ForemanNetworkError({ method: "GET", url: "u", cause: new Error("boom") }),
      new ForemanTimeoutError({ method: "GET", url: "u", timeoutMs: 5 }),
      new ForemanProtocolError("bad"),
      new JobFailedError(job({})),
      new JobStreamError("id", "boom"),
      new JobTimeoutError({ jobId: null, job: null, timeoutMs: 1 }),
    ];
    for (const error of errors) {
      expect(error).to.be.instanceOf(ForemanClientError).and.instanceOf(Error);
      expect(error.name).to.equal(error.constructor.name);
    }
  });

  it("the errors of one request are ForemanRequestErrors that say which request", () => {
    const errors = [
      new ForemanHttpError({ status: 404, error: "job x not found", method: "GET", url: "u", jobId: null }),
      new ForemanNetworkError({ method: "GET", url: "u", cause: new Error("boom") }),
      new ForemanTimeoutError({ method: "GET", url: "u", timeoutMs: 5 }),
    ];
    for (const error of errors) {
      expect(error).to.be.instanceOf(ForemanRequestError);
      expect(error).to.include({ method: "GET", url: "u" });
    }
    expect(new ForemanProtocolError("bad")).to.not.be.instanceOf(ForemanRequestError);
  });

  it("ForemanHttpError's message is the server's error text unchanged", () => {
    const error = new ForemanHttpError({
      status: 400,
      error: 'model "x" not found, try pulling it first',
      method: "POST",
      url: "http://h/jobs",
      jobId: "J",
    });
    expect(error.message).to.equal('model "x" not found, try pulling it first');
    expect(error).to.include({ status: 400, method: "POST", url: "http://h/jobs", jobId: "J" });
  });

  it("ForemanNetworkError digs the reason and code out of undici's 'fetch failed'", () => {
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    const error = new ForemanNetworkError({
      method: "GET",
      url: "http://127.0.0.1:9/jobs",
      cause: new TypeError("fetch failed", { cause }),
    });
    expect(error.message).to.equal("GET http://127.0.0.1:9/jobs failed: connect ECONNREFUSED 127.0.0.1:9");
    expect(error.code).to.equal("ECONNREFUSED");
    expect(error.cause).to.be.instanceOf(TypeError);
  });

  it("JobFailedError says how the job ended and carries it", () => {
    const failed = new JobFailedError(job({ state: "failed", error: "target lost mid-generation" }));
    expect(failed.message).to.equal("job 01JDQ5Z9X1ABCDEFGHJKMNPQRS failed: target lost mid-generation");
    expect(failed.state).to.equal("failed");
    expect(failed.job.error).to.equal("target lost mid-generation");
    const canceled = new JobFailedError(job({ state: "canceled" }));
    expect(canceled.message).to.equal("job 01JDQ5Z9X1ABCDEFGHJKMNPQRS was canceled");
    expect(canceled.state).to.equal("canceled");
  });

  it("JobTimeoutError names the job and its last state when known", () => {
    const seen = new JobTimeoutError({ jobId: "J", job: job({ id: "J", state: "working" }), timeoutMs: 50 });
    expect(seen.message).to.equal("job J did not end within 50 ms (last state: working)");
    const unseen = new JobTimeoutError({ jobId: null, job: null, timeoutMs: 50, idempotencyKey: "k" });
    expect(unseen.message).to.equal("the job submission did not end within 50 ms");
    expect(unseen.idempotencyKey).to.equal("k");
  });
});
