import { expect } from "chai";
import { renderLabels } from "../../src/store/metrics.js";
import { openStore } from "../../src/store/store.js";
import { tempDbPath } from "./helpers.js";

describe("store: metrics", () => {
  const open = () => openStore({ dbPath: tempDbPath() });
  const series = (store: ReturnType<typeof open>, name: string) =>
    Object.fromEntries(
      store.metrics
        .rows()
        .filter((r) => r.name === name)
        .map((r) => [r.labels, r.value]),
    );

  it("renders labels with keys sorted and values escaped", () => {
    expect(renderLabels({})).to.equal("");
    expect(renderLabels({ state: "done", model: "llama3.2:latest" })).to.equal('model="llama3.2:latest",state="done"');
    expect(renderLabels({ model: 'a\\b"c\nd' })).to.equal('model="a\\\\b\\"c\\nd"');
  });

  it("a histogram keeps the whole bucket set per series, cumulative, with its sum and count", () => {
    const store = open();
    const buckets = [1, 10];
    store.metrics.observe("h", { model: "m" }, 20, buckets);
    // Above every bound: each bucket has its row, at 0, and only +Inf counts it.
    expect(series(store, "h_bucket")).to.deep.equal({
      'le="1",model="m"': 0,
      'le="10",model="m"': 0,
      'le="+Inf",model="m"': 1,
    });
    store.metrics.observe("h", { model: "m" }, 0.5, buckets);
    store.metrics.observe("h", { model: "m" }, 5, buckets);
    store.metrics.observe("h", { model: "other" }, 5, buckets);
    expect(series(store, "h_bucket")).to.deep.equal({
      'le="1",model="m"': 1,
      'le="10",model="m"': 2,
      'le="+Inf",model="m"': 3,
      'le="1",model="other"': 0,
      'le="10",model="other"': 1,
      'le="+Inf",model="other"': 1,
    });
    expect(series(store, "h_sum")).to.deep.equal({ 'model="m"': 25.5, 'model="other"': 5 });
    expect(series(store, "h_count")).to.deep.equal({ 'model="m"': 3, 'model="other"': 1 });
    store.close();
  });

  it("two histograms with the same labels and different bounds keep their own buckets", () => {
    const store = open();
    store.metrics.observe("a", { model: "m" }, 2, [1, 5]);
    store.metrics.observe("b", { model: "m" }, 2, [3]);
    expect(Object.keys(series(store, "a_bucket"))).to.have.members([
      'le="1",model="m"',
      'le="5",model="m"',
      'le="+Inf",model="m"',
    ]);
    expect(series(store, "b_bucket")).to.deep.equal({ 'le="3",model="m"': 1, 'le="+Inf",model="m"': 1 });
    store.close();
  });
});
