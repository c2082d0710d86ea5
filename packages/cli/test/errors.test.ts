import {
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  ForemanTimeoutError,
  type Job,
  JobFailedError,
} from "@foreman/client";
import { expect } from "chai";
import { describeFailure } from "../src/errors.js";
import { CliError, UnreachableError, UsageError } from "../src/exit-codes.js";

const SECRET = "tok-0123456789abcdef";
const context = { foremanUrl: "http://127.0.0.1:11435", tokenSet: true, secrets: [SECRET] };

describe("describeFailure", () => {
  it("maps every failure to its exit code: no answer 3, an error answer 1, a failed job 4, usage 2", () => {
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:11435"), { code: "ECONNREFUSED" });
    const cases: Array<[unknown, number, RegExp]> = [
      [new UsageError("bad"), 2, /^bad$/],
      [new UnreachableError("gone"), 3, /^gone$/],
      [new CliError("nope"), 1, /^nope$/],
      [
        new ForemanNetworkError({
          method: "GET",
          url: "http://127.0.0.1:11435/jobs",
          cause: new TypeError("fetch failed", { cause }),
        }),
        3,
        /^cannot reach foreman at http:\/\/127\.0\.0\.1:11435: connect ECONNREFUSED 127\.0\.0\.1:11435\. Is the gateway running/,
      ],
      [
        new ForemanTimeoutError({ method: "GET", url: "http://127.0.0.1:11435/jobs", timeoutMs: 30000 }),
        3,
        /did not answer in time/,
      ],
      [
        new ForemanHttpError({
          status: 404,
          error: "job 01X not found",
          method: "GET",
          url: "http://h/jobs/01X",
          jobId: null,
        }),
        1,
        /^job 01X not found \(foreman answered GET \/jobs\/01X with 404\)$/,
      ],
      [
        new ForemanHttpError({ status: 401, error: "unauthorized", method: "GET", url: "http://h/jobs", jobId: null }),
        1,
        /with 401 \(unauthorized\): FOREMAN_API_TOKEN is not the token this gateway expects$/,
      ],
      [new JobFailedError({ id: "01X", state: "failed", error: "boom" } as Job), 4, /^job 01X failed: boom$/],
      [new ForemanProtocolError("not JSON"), 1, /^not JSON$/],
      [new Error("odd"), 1, /^odd$/],
    ];
    for (const [error, exitCode, message] of cases) {
      const failure = describeFailure(error, context);
      expect(failure.exitCode, String(error)).to.equal(exitCode);
      expect(failure.message).to.match(message);
    }
  });

  it("never lets a secret through, whatever the error says", () => {
    const failure = describeFailure(new Error(`header value ${SECRET} is invalid`), context);
    expect(failure.message).to.equal("header value [redacted] is invalid");
  });

  it("tells a caller without a token to set one", () => {
    const error = new ForemanHttpError({
      status: 401,
      error: "unauthorized",
      method: "GET",
      url: "http://h/jobs",
      jobId: null,
    });
    expect(describeFailure(error, { ...context, tokenSet: false }).message).to.include("set FOREMAN_API_TOKEN");
  });
});
