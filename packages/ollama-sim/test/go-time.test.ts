import { expect } from "chai";
import { formatGoTime, MAX_GO_DURATION_MS, msToNs } from "../src/go-time.js";

describe("go-time", () => {
  it("prints UTC times like Go's RFC3339Nano, trailing zeros trimmed", () => {
    const at = Date.UTC(2023, 7, 4, 19, 22, 45, 499) + 0.127;
    expect(formatGoTime(at, true)).to.equal("2023-08-04T19:22:45.499127Z");
    expect(formatGoTime(Date.UTC(2024, 0, 1, 0, 0, 0, 0), true)).to.equal("2024-01-01T00:00:00Z");
    expect(formatGoTime(Date.UTC(2024, 0, 1, 0, 0, 0, 500), true)).to.equal("2024-01-01T00:00:00.5Z");
  });

  it("prints local times with the local offset (Z when it is zero)", () => {
    const text = formatGoTime(Date.UTC(2024, 5, 4, 21, 38, 31, 837) + 0.53, false);
    expect(text).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:31\.83753(Z|[+-]\d\d:\d\d)$/);
    expect(new Date(text).getTime()).to.equal(Date.UTC(2024, 5, 4, 21, 38, 31, 837));
  });

  it("puts a pinned model's expiry about 292 years ahead", () => {
    const text = formatGoTime(Date.UTC(2025, 0, 1) + MAX_GO_DURATION_MS, true);
    expect(text.startsWith("2317-04-")).to.equal(true);
  });

  it("converts milliseconds to whole nanoseconds", () => {
    expect(msToNs(1.5)).to.equal(1_500_000);
    expect(msToNs(-3)).to.equal(0);
  });
});
