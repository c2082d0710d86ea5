import { expect } from "chai";
import { PullProgress, plainLineDue, renderBar, renderDone, renderPlain } from "../src/pull-progress.js";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const layer = (digest: string, total: number, completed: number) => ({
  status: `pulling ${digest.slice(7, 19)}`,
  digest,
  total,
  completed,
});
const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

describe("pull progress", () => {
  it("sums the layers seen, measures the rate over recent time and estimates the time left", () => {
    const c = clock();
    const p = new PullProgress("llama3.2", c.now);
    p.update({ status: "pulling manifest" });
    expect(p.fraction).to.equal(null);
    expect(renderPlain(p)).to.equal("llama3.2: pulling manifest");
    p.update(layer(A, 1_000_000_000, 0));
    c.advance(1000);
    p.update(layer(A, 1_000_000_000, 100_000_000));
    expect(p.rate).to.equal(100_000_000);
    expect(p.secondsLeft).to.equal(9);
    c.advance(1000);
    p.update(layer(B, 1_000_000_000, 0));
    expect(p.total).to.equal(2_000_000_000);
    expect(p.completed).to.equal(100_000_000);
    expect(renderPlain(p)).to.equal("llama3.2: pulling bbbbbbbbbbbb    5%  100 MB/2.0 GB  50.0 MB/s  0:38 left");
    expect(renderBar(p, 10, 10)).to.equal("llama3.2    [#---------]    5%  100 MB/2.0 GB  50.0 MB/s  0:38 left");
  });

  it("forgets samples older than the window, so the rate follows the network", () => {
    const c = clock();
    const p = new PullProgress("m", c.now);
    p.update(layer(A, 100_000_000, 0));
    c.advance(1000);
    p.update(layer(A, 100_000_000, 50_000_000)); // fast at first
    for (let i = 1; i <= 10; i++) {
      c.advance(1000);
      p.update(layer(A, 100_000_000, 50_000_000 + i * 1_000_000)); // then 1 MB/s
    }
    expect(p.rate).to.be.closeTo(1_000_000, 1);
  });

  it("has no rate from a single instant, and says how a pull ended", () => {
    const c = clock();
    const p = new PullProgress("m", c.now);
    p.update(layer(A, 10, 5));
    expect(p.rate).to.equal(null);
    expect(p.secondsLeft).to.equal(null);
    expect(renderBar(p, 1, 4)).to.equal("m  [##--]   50%  5 B/10 B  -  -:-- left");
    c.advance(65_000);
    p.update({ status: "success" });
    expect(renderBar(p, 1)).to.equal("m  success");
    expect(renderDone(p)).to.equal("m: pulled (10 B, 1m 05s)");
  });

  it("plain output prints each status and each tenth, not every line", () => {
    const p = new PullProgress("m", clock().now);
    const state = { status: "", tenth: -1 };
    const printed: number[] = [];
    const lines = [{ status: "pulling manifest" }, ...[0, 1, 5, 9, 10, 25, 26, 99, 100].map((c) => layer(A, 100, c))];
    lines.forEach((line, i) => {
      p.update(line);
      if (plainLineDue(p, state)) printed.push(i);
    });
    // manifest, 0 % (new status), 10 %, 25 %, 99 %, 100 %
    expect(printed).to.deep.equal([0, 1, 5, 6, 8, 9]);
  });
});
