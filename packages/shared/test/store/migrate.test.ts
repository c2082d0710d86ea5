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

  it("lets jobs be embeddings from version 11, keeping every row, reference, index and trigger of the jobs table", () => {
    const db = openDatabase({ path: tempDbPath() });
    migrate(
      db,
      MIGRATIONS.filter((m) => m.version < 11),
    );
    const job = (id: string, kind: string, state: string) =>
      db
        .prepare(
          `INSERT INTO jobs (id, kind, api, mode, model, runner_options, state, request, created_at, updated_at)
           VALUES (?, ?, 'ollama', 'sync', 'm', '', ?, '{"model":"m"}', 1, 1)`,
        )
        .run(id, kind, state);
    job("01A", "chat", "done");
    job("01B", "generate", "queued");
    db.prepare("INSERT INTO job_transitions (job_id, to_state, attempt, at) VALUES ('01A', 'done', 1, 1)").run();
    db.prepare(
      `INSERT INTO artifacts (job_id, name, content_type, size, path, created_at)
       VALUES ('01A', 'result.json', 'application/json', 2, 'a', 1)`,
    ).run();
    expect(() => job("01C", "embed", "queued")).to.throw(/CHECK constraint failed/);
    const schemaOf = () =>
      db
        .prepare("SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'jobs' AND type != 'table' ORDER BY name")
        .all();
    const before = schemaOf();

    expect(
      migrate(
        db,
        MIGRATIONS.filter((m) => m.version <= 11),
      ).applied,
    ).to.deep.equal([11]);
    expect(db.pragma("foreign_keys", { simple: true })).to.equal(1);
    expect(schemaOf()).to.deep.equal(before);
    job("01C", "embed", "queued");
    job("01D", "embeddings", "queued");
    expect(() => job("01E", "rerank", "queued")).to.throw(/CHECK constraint failed/);
    expect(db.prepare("SELECT id, kind FROM jobs ORDER BY id").all()).to.deep.equal([
      { id: "01A", kind: "chat" },
      { id: "01B", kind: "generate" },
      { id: "01C", kind: "embed" },
      { id: "01D", kind: "embeddings" },
    ]);
    // The queue totals' triggers came back: three jobs queued now.
    expect(db.prepare("SELECT jobs FROM queue_totals").get()).to.deep.equal({ jobs: 3 });
    // References still point at jobs: deleting a job removes its history and artifacts.
    db.prepare("DELETE FROM jobs WHERE id = '01A'").run();
    expect(db.prepare("SELECT COUNT(*) AS n FROM job_transitions").get()).to.deep.equal({ n: 0 });
    expect(db.prepare("SELECT COUNT(*) AS n FROM artifacts").get()).to.deep.equal({ n: 0 });
    expect(db.prepare("PRAGMA integrity_check").get()).to.deep.equal({ integrity_check: "ok" });
    db.close();
  });

  it("counts the queue per second from version 12, from the jobs already queued and every move after", () => {
    const db = openDatabase({ path: tempDbPath() });
    migrate(
      db,
      MIGRATIONS.filter((m) => m.version < 12),
    );
    const job = (id: string, model: string, state: string) =>
      db
        .prepare(
          `INSERT INTO jobs (id, kind, api, mode, model, runner_options, state, request, created_at, updated_at)
           VALUES (?, 'chat', 'ollama', 'async', ?, '', ?, '{}', 1, 1)`,
        )
        .run(id, model, state);
    job("01AAAAAAAA01", "m", "queued");
    job("01AAAAAAAA02", "n", "queued");
    job("01AAAAABBB01", "m", "queued");
    job("01AAAAABBB02", "m", "done");
    migrate(db);
    const buckets = () => db.prepare("SELECT prefix, n FROM queue_buckets ORDER BY prefix").all();
    const loadBuckets = () =>
      db.prepare("SELECT model, prefix, n FROM queue_load_buckets ORDER BY model, prefix").all();
    expect(buckets()).to.deep.equal([
      { prefix: "01AAAAAA", n: 2 },
      { prefix: "01AAAAAB", n: 1 },
    ]);
    expect(loadBuckets()).to.deep.equal([
      { model: "m", prefix: "01AAAAAA", n: 1 },
      { model: "m", prefix: "01AAAAAB", n: 1 },
      { model: "n", prefix: "01AAAAAA", n: 1 },
    ]);
    // Leaving the queue, coming back to it, and a delete each move the counts; an emptied bucket goes.
    db.prepare("UPDATE jobs SET state = 'loading' WHERE id = '01AAAAABBB01'").run();
    db.prepare("UPDATE jobs SET state = 'queued' WHERE id = '01AAAAABBB02'").run();
    db.prepare("DELETE FROM jobs WHERE id = '01AAAAAAAA02'").run();
    db.prepare("UPDATE jobs SET request = '{\"a\":1}' WHERE id = '01AAAAAAAA01'").run();
    expect(buckets()).to.deep.equal([
      { prefix: "01AAAAAA", n: 1 },
      { prefix: "01AAAAAB", n: 1 },
    ]);
    expect(loadBuckets()).to.deep.equal([
      { model: "m", prefix: "01AAAAAA", n: 1 },
      { model: "m", prefix: "01AAAAAB", n: 1 },
    ]);
    db.prepare("UPDATE jobs SET state = 'canceled' WHERE state = 'queued'").run();
    expect(buckets()).to.deep.equal([]);
    expect(loadBuckets()).to.deep.equal([]);
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
