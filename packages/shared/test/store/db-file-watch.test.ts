import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { watchDatabaseFile } from "../../src/store/db-file-watch.js";
import { openStore } from "../../src/store/store.js";
import { tempDbPath } from "./helpers.js";

describe("store/db-file-watch", () => {
  it("stays ok while the file is the one opened, even as it is written", () => {
    const file = tempDbPath();
    const store = openStore({ dbPath: file });
    const lost: string[] = [];
    const watch = watchDatabaseFile({ path: file, intervalMs: 60_000, onLost: (p) => lost.push(p) });
    store.transitions.createJob({ kind: "chat", api: "ollama", mode: "async", model: "m", request: {} });
    store.close(); // the checkpoint rewrites the file in place
    expect(watch.check()).to.equal("ok");
    expect(watch.problem()).to.equal(null);
    expect(lost).to.deep.equal([]);
  });

  it("reports a deleted file once, and stays lost", () => {
    const file = tempDbPath();
    openStore({ dbPath: file }).close();
    const lost: string[] = [];
    const watch = watchDatabaseFile({ path: file, intervalMs: 60_000, onLost: (p) => lost.push(p) });
    fs.rmSync(file);
    expect(watch.check()).to.equal("deleted");
    openStore({ dbPath: file }).close(); // a new process made a new file at the path: still not ours
    expect(watch.check()).to.equal("deleted");
    expect(lost).to.deep.equal([`database file ${file} was deleted while foreman was running`]);
  });

  it("reports a file replaced by another at the same path", () => {
    const file = tempDbPath();
    openStore({ dbPath: file }).close();
    const watch = watchDatabaseFile({ path: file, intervalMs: 60_000, onLost: () => undefined });
    const other = path.join(path.dirname(file), "other.db");
    fs.copyFileSync(file, other);
    fs.renameSync(other, file);
    expect(watch.check()).to.equal("replaced");
    expect(watch.problem()).to.match(/was replaced while foreman was running$/);
  });
});
