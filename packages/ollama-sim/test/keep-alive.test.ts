import { expect } from "chai";
import { DurationError, parseGoDuration, parseKeepAlive } from "../src/keep-alive.js";

describe("keep-alive", () => {
  describe("parseGoDuration", () => {
    const cases: Array<[string, number]> = [
      ["5m", 300_000],
      ["1h30m", 5_400_000],
      ["300ms", 300],
      ["1.5s", 1500],
      [".5s", 500],
      ["2h", 7_200_000],
      ["10us", 0.01],
      ["0", 0],
      ["-1m", -60_000],
      ["+3s", 3000],
    ];
    for (const [input, ms] of cases) {
      it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => {
        expect(parseGoDuration(input)).to.be.closeTo(ms, 1e-9);
      });
    }

    it("fails with Go's messages", () => {
      expect(() => parseGoDuration("")).to.throw(DurationError, 'time: invalid duration ""');
      expect(() => parseGoDuration("abc")).to.throw(DurationError, 'time: invalid duration "abc"');
      expect(() => parseGoDuration("5")).to.throw(DurationError, 'time: missing unit in duration "5"');
      expect(() => parseGoDuration("5x")).to.throw(DurationError, 'time: unknown unit "x" in duration "5x"');
    });
  });

  describe("parseKeepAlive", () => {
    it("leaves an absent or null keep_alive unset", () => {
      expect(parseKeepAlive(undefined)).to.equal(undefined);
      expect(parseKeepAlive(null)).to.equal(undefined);
    });

    it("reads numbers as seconds and negatives as forever", () => {
      expect(parseKeepAlive(0)).to.equal(0);
      expect(parseKeepAlive(30)).to.equal(30_000);
      expect(parseKeepAlive(0.25)).to.equal(250);
      expect(parseKeepAlive(-1)).to.equal(Number.POSITIVE_INFINITY);
      expect(parseKeepAlive("-5m")).to.equal(Number.POSITIVE_INFINITY);
      expect(parseKeepAlive("10m")).to.equal(600_000);
    });

    it("rejects other JSON types as api.Duration does", () => {
      expect(() => parseKeepAlive(true)).to.throw(DurationError, "Unsupported type: 'bool'");
      expect(() => parseKeepAlive({})).to.throw(DurationError, "Unsupported type: 'map[string]interface {}'");
      expect(() => parseKeepAlive([])).to.throw(DurationError, "Unsupported type: '[]interface {}'");
    });
  });
});
