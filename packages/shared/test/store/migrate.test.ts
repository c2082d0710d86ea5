import { spawn } from "node:child_process";
import path from "node:path";
import { expect } from "chai";
import { openDatabase } from "../../src/store/database.js";
import { migrate } from "../../src/store/migrate.js";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { tempDbPath } from "./helpers.js";

const SHARED_DIST = path.resolve(import.meta.dirname, "../../dist/index.js");

describe("store/migrate", () => {
  it("applies every migration to a new database, then nothing on the next open", () => {
    const file = tempDbPath();
    const db = openDatabase({ path: file });
    const first = migrate(db);
    expect(first.from).to.equal(0);
    expect(first.applied).to.deep.equal(MIGRATIONS.map((m) => m.version));
    db.close();

    const again = openDatabase({ path: file });
    const second = migrate(again);
    expect(second.applied).to.deep.equal([]);
    expect(again.prepare("SELECT COUNT(*) AS n FROM schema_migrations").get()).to.deep.equal({ n: MIGRATIONS.length });
    expect(again.pragma("user_version", { simple: true })).to.equal(MIGRATIONS.at(-1)!.version);
    again.close();
  });

  it("opens in WAL mode with foreign keys on", () => {
    const db = openDatabase({ path: tempDbPath() });
    expect(db.pragma("journal_mode", { simple: true })).to.equal("wal");
    expect(db.pragma("foreign_keys", { simple: true })).to.equal(1);
    expect(db.pragma("synchronous", { simple: true })).to.equal(1); // NORMAL
    db.close();
    const full = openDatabase({ path: tempDbPath(), synchronous: "full" });
    expect(full.pragma("synchronous", { simple: true })).to.equal(2);
    full.close();
  });

  it("refuses a database written by a newer foreman", () => {
    const db = openDatabase({ path: tempDbPath() });
    migrate(db);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run();
    expect(() => migrate(db)).to.throw(/schema version 999 is newer than this foreman understands/);
    db.close();
  });

  it("rolls back a failing migration whole", () => {
    const db = openDatabase({ path: tempDbPath() });
    const broken = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, name: "broken", sql: "CREATE TABLE x (a); SELEKT 1;" },
    ];
    expect(() => migrate(db, broken)).to.throw();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'jobs'").get()).to.equal(undefined);
    expect(migrate(db).applied).to.deep.equal(MIGRATIONS.map((m) => m.version));
    db.close();
  });

  it("is safe when several processes open a new database at the same moment", async function () {
    this.timeout(30_000);
    const file = tempDbPath();
    const script = `
      import(${JSON.stringify(SHARED_DIST)}).then(({ openStore }) => {
        const store = openStore({ dbPath: ${JSON.stringify(file)} });
        process.stdout.write(JSON.stringify(store.migration.applied));
        store.close();
      });`;
    const runs = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
            let out = "";
            let err = "";
            child.stdout.on("data", (d) => (out += d));
            child.stderr.on("data", (d) => (err += d));
            child.on("exit", (code) => resolve({ code, out, err }));
          }),
      ),
    );
    for (const r of runs) expect(r.code, r.err).to.equal(0);
    const applied = runs.map((r) => JSON.parse(r.out) as number[]);
    expect(applied.filter((a) => a.length > 0)).to.have.length(1);
    const db = openDatabase({ path: file });
    expect(db.prepare("SELECT COUNT(*) AS n FROM schema_migrations").get()).to.deep.equal({ n: MIGRATIONS.length });
    db.close();
  });
});
