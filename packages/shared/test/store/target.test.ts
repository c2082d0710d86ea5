import { expect } from "chai";
import { openStore, type Store } from "../../src/store/store.js";
import { tempDbPath } from "./helpers.js";

describe("store/target", () => {
  let store: Store;
  beforeEach(() => {
    store = openStore({ dbPath: tempDbPath() });
  });
  afterEach(() => store.close());

  const seen = (reachable: boolean, at: number) =>
    store.target.record({
      reachable,
      version: reachable ? "0.9.0" : null,
      resident: [],
      lastCheckedAt: at,
      lastError: null,
    });

  it("remembers when the current outage began, and forgets it once the target is back", () => {
    seen(false, 1000);
    expect(store.target.get()).to.include({ reachable: false, downSince: 1000, lastSeenAt: null });
    seen(false, 2000);
    expect(store.target.get()?.downSince).to.equal(1000);
    seen(true, 3000);
    expect(store.target.get()).to.include({ reachable: true, downSince: null, lastSeenAt: 3000 });
    seen(false, 4000);
    seen(false, 5000);
    expect(store.target.get()).to.include({ downSince: 4000, lastSeenAt: 3000 });
  });
});
