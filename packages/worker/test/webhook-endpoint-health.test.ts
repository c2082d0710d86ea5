import type { EndpointHealth } from "@foreman/shared";
import { expect } from "chai";
import { type EndpointVerdict, endpointAccepts, endpointHealthAfter } from "../src/webhook-endpoint-health.js";

const H = 3_600_000;
const rules = { disableAfterMs: 24 * H, disableAfterFailures: 10, disabledForMs: 6 * H };
const failed: EndpointVerdict = { kind: "failed", error: "HTTP 500" };

const failing = (since: number, failures: number): EndpointHealth => ({
  failingSince: since,
  consecutiveFailures: failures,
  disabledAt: null,
  disabledUntil: null,
  disabledReason: null,
});
const disabled = (at: number, reason = "it answered 410 Gone"): EndpointHealth => ({
  failingSince: at,
  consecutiveFailures: 1,
  disabledAt: at,
  disabledUntil: at + rules.disabledForMs,
  disabledReason: reason,
});

describe("webhook-endpoint-health", () => {
  describe("endpointHealthAfter: worked examples", () => {
    const table: Array<{
      case: string;
      health: EndpointHealth | null;
      verdict: EndpointVerdict;
      now: number;
      expect: { health: EndpointHealth | null; disabledBecause: string | null };
    }> = [
      {
        case: "a success on a healthy endpoint keeps no state",
        health: null,
        verdict: { kind: "delivered" },
        now: 0,
        expect: { health: null, disabledBecause: null },
      },
      {
        case: "a first failure starts a run",
        health: null,
        verdict: failed,
        now: 5,
        expect: { health: failing(5, 1), disabledBecause: null },
      },
      {
        case: "a success ends the run",
        health: failing(0, 30),
        verdict: { kind: "delivered" },
        now: 23 * H,
        expect: { health: null, disabledBecause: null },
      },
      {
        case: "many failures, but not for long enough",
        health: failing(0, 50),
        verdict: failed,
        now: 24 * H - 1,
        expect: { health: failing(0, 51), disabledBecause: null },
      },
      {
        case: "long enough, but too few attempts (a quiet gap is not an outage)",
        health: failing(0, 8),
        verdict: failed,
        now: 48 * H,
        expect: { health: failing(0, 9), disabledBecause: null },
      },
      {
        case: "long enough and the tenth failure in a row: disabled",
        health: failing(0, 9),
        verdict: failed,
        now: 24 * H,
        expect: {
          health: {
            failingSince: 0,
            consecutiveFailures: 10,
            disabledAt: 24 * H,
            disabledUntil: 30 * H,
            disabledReason: "every attempt failed for 24 h (10 attempts, last: HTTP 500)",
          },
          disabledBecause: "every attempt failed for 24 h (10 attempts, last: HTTP 500)",
        },
      },
      {
        case: "a 410 disables at once, even a healthy endpoint",
        health: null,
        verdict: { kind: "gone" },
        now: 7,
        expect: { health: disabled(7), disabledBecause: "it answered 410 Gone" },
      },
      {
        case: "a failure that ends after another attempt disabled the endpoint changes nothing",
        health: disabled(100),
        verdict: failed,
        now: 200,
        expect: { health: disabled(100), disabledBecause: null },
      },
      {
        case: "a failed trial disables it for another period",
        health: disabled(0),
        verdict: { kind: "failed", error: "timed out after 10000 ms" },
        now: 6 * H,
        expect: {
          health: {
            failingSince: 0,
            consecutiveFailures: 2,
            disabledAt: 6 * H,
            disabledUntil: 12 * H,
            disabledReason: "its trial delivery failed (timed out after 10000 ms)",
          },
          disabledBecause: "its trial delivery failed (timed out after 10000 ms)",
        },
      },
      {
        case: "a successful trial enables it",
        health: disabled(0),
        verdict: { kind: "delivered" },
        now: 6 * H,
        expect: { health: null, disabledBecause: null },
      },
      {
        case: "with disableAfterMs 0, failures never disable",
        health: failing(0, 1000),
        verdict: failed,
        now: 1000 * H,
        expect: { health: failing(0, 1001), disabledBecause: null },
      },
    ];
    for (const row of table) {
      it(row.case, () => {
        const r = row.case.startsWith("with disableAfterMs 0") ? { ...rules, disableAfterMs: 0 } : rules;
        expect(endpointHealthAfter(row.health, row.verdict, row.now, r)).to.deep.equal(row.expect);
      });
    }
  });

  it("endpointAccepts: refuses a disabled endpoint until its trial is due", () => {
    expect(endpointAccepts(null, 0)).to.equal(true);
    expect(endpointAccepts(failing(0, 3), 0)).to.equal(true);
    expect(endpointAccepts(disabled(0), 6 * H - 1)).to.equal(false);
    expect(endpointAccepts(disabled(0), 6 * H)).to.equal(true);
  });
});
