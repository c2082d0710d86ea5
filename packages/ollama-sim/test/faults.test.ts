import { expect } from "chai";
import { FaultPlan, FaultRequestError, parseFaultRequest } from "../src/faults.js";

describe("faults", () => {
  describe("FaultPlan", () => {
    it("hangs the next N matching requests only", () => {
      const plan = new FaultPlan();
      plan.setHang({ count: 2, pathPrefix: "/api/chat" });
      expect(plan.takeHang("/api/generate")).to.equal(false);
      expect(plan.takeHang("/api/chat")).to.equal(true);
      expect(plan.takeHang("/api/chat")).to.equal(true);
      expect(plan.takeHang("/api/chat")).to.equal(false);
      expect(plan.snapshot().hang).to.equal(null);
    });

    it("applies a window of time", () => {
      let now = 1000;
      const plan = new FaultPlan(() => now);
      plan.setSlowFirstToken({ ms: 250, forMs: 100 });
      expect(plan.takeSlowFirstToken("/api/chat")).to.equal(250);
      expect(plan.takeSlowFirstToken("/api/chat")).to.equal(250);
      now = 1101;
      expect(plan.takeSlowFirstToken("/api/chat")).to.equal(0);
    });

    it("lasts until cleared without count or window", () => {
      const plan = new FaultPlan();
      plan.setDieMidStream({ afterChunks: 3 });
      expect(plan.takeDieMidStream("/api/chat")).to.equal(3);
      expect(plan.takeDieMidStream("/v1/chat/completions")).to.equal(3);
      plan.clear();
      expect(plan.takeDieMidStream("/api/chat")).to.equal(undefined);
    });
  });

  describe("parseFaultRequest", () => {
    it("accepts the documented shapes", () => {
      expect(
        parseFaultRequest({
          clear: true,
          refuse: { ms: 2000 },
          hang: { count: 1, pathPrefix: "/api/chat" },
          dieMidStream: { afterChunks: 3, count: 1 },
          slowFirstToken: { ms: 1500, forMs: 10_000 },
        }),
      ).to.deep.equal({
        clear: true,
        refuse: { ms: 2000 },
        hang: { count: 1, pathPrefix: "/api/chat" },
        dieMidStream: { afterChunks: 3, count: 1 },
        slowFirstToken: { ms: 1500, forMs: 10_000 },
      });
    });

    it("names the bad field", () => {
      expect(() => parseFaultRequest({ refuse: {} })).to.throw(FaultRequestError, "refuse.ms is required");
      expect(() => parseFaultRequest({ hang: { count: 0 } })).to.throw(FaultRequestError, "hang.count");
      expect(() => parseFaultRequest({ sleep: 1 })).to.throw(FaultRequestError, 'unknown fault "sleep"');
      expect(() => parseFaultRequest({ dieMidStream: { count: 1 } })).to.throw(
        FaultRequestError,
        "afterChunks is required",
      );
      expect(() => parseFaultRequest([])).to.throw(FaultRequestError);
    });
  });
});
