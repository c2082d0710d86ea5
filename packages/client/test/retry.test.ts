import { expect } from "chai";
import { ForemanHttpError, ForemanNetworkError, ForemanTimeoutError } from "../src/errors.js";
import { DEFAULT_RETRY_POLICY, isTransient, retryDelayMs, retryPolicy, withRetries } from "../src/retry.js";

const http = (status: number) => new ForemanHttpError({ status, error: "x", method: "GET", url: "u", jobId: null });
const network = () => new ForemanNetworkError({ method: "GET", url: "u", cause: new Error("socket hang up") });
const fast = retryPolicy({ retries: 3, minDelayMs: 1, maxDelayMs: 2 });

describe("retry policy", () => {
  it("defaults to 5 retries from 250 ms up to 5 s, and keeps given values", () => {
    expect(retryPolicy(undefined)).to.deep.equal({ retries: 5, minDelayMs: 250, maxDelayMs: 5000 });
    expect(retryPolicy({ retries: 0, minDelayMs: undefined })).to.deep.equal({ ...DEFAULT_RETRY_POLICY, retries: 0 });
  });

  it("calls lost connections, request timeouts and 502/503/504 transient, and nothing else", () => {
    expect(isTransient(network())).to.equal(true);
    expect(isTransient(new ForemanTimeoutError({ method: "GET", url: "u", timeoutMs: 1 }))).to.equal(true);
    for (const status of [502, 503, 504]) expect(isTransient(http(status)), String(status)).to.equal(true);
    for (const status of [400, 401, 404, 409, 500]) expect(isTransient(http(status)), String(status)).to.equal(false);
    expect(isTransient(new Error("bug"))).to.equal(false);
    expect(isTransient(new DOMException("aborted", "AbortError"))).to.equal(false);
  });

  it("backs off exponentially between half and all of the ceiling, capped", () => {
    const policy = retryPolicy({ minDelayMs: 100, maxDelayMs: 1000 });
    expect([0, 1, 2, 3, 4, 10].map((n) => retryDelayMs(n, policy, () => 0))).to.deep.equal([
      50, 100, 200, 400, 500, 500,
    ]);
    expect([0, 1, 2, 3, 4, 10].map((n) => retryDelayMs(n, policy, () => 1))).to.deep.equal([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });
});

describe("withRetries", () => {
  it("repeats transient failures until the operation succeeds", async () => {
    let calls = 0;
    const value = await withRetries(async () => {
      calls++;
      if (calls < 3) throw calls === 1 ? network() : http(503);
      return "ok";
    }, fast);
    expect(value).to.equal("ok");
    expect(calls).to.equal(3);
  });

  it("gives up after the allowed retries with the last error", async () => {
    let calls = 0;
    const error = await withRetries(async () => {
      calls++;
      throw http(502);
    }, fast).catch((e: unknown) => e);
    expect(calls).to.equal(4);
    expect((error as ForemanHttpError).status).to.equal(502);
  });

  it("does not repeat an error that is about the request", async () => {
    let calls = 0;
    const error = await withRetries(async () => {
      calls++;
      throw http(409);
    }, fast).catch((e: unknown) => e);
    expect(calls).to.equal(1);
    expect((error as ForemanHttpError).status).to.equal(409);
  });

  it("stops backing off when the signal aborts", async () => {
    const controller = new AbortController();
    let calls = 0;
    const pending = withRetries(
      async () => {
        calls++;
        queueMicrotask(() => controller.abort("stop"));
        throw network();
      },
      retryPolicy({ retries: 5, minDelayMs: 60_000, maxDelayMs: 60_000 }),
      controller.signal,
    );
    expect(await pending.catch((e: unknown) => e)).to.equal("stop");
    expect(calls).to.equal(1);
  });
});
