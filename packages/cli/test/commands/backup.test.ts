import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { retainNativeHandles } from "../../../shared/src/store/database.js";
import { runCli } from "../../src/cli.js";
import { memoryIo } from "../memory-io.js";

describe("foreman backup", () => {
  let dir: string;
  let source: string;
  let writer: Database.Database;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreman-cli-backup-"));
    source = path.join(dir, "data", "foreman.db");
    fs.mkdirSync(path.dirname(source));
    writer = retainNativeHandles(new Database(source));
    writer.pragma("journal_mode = WAL");
    // No automatic checkpoint: the rows below stay in the -wal file, which a file copy of foreman.db would miss.
    writer.pragma("wal_autocheckpoint = 0");
    writer.exec("CREATE TABLE jobs (id TEXT PRIMARY KEY, body TEXT)");
    const insert = writer.prepare("INSERT INTO jobs (id, body) VALUES (?, ?)");
    for (let i = 0; i < 500; i++) insert.run(`job-${i}`, "x".repeat(500));
  });
  afterEach(() => {
    writer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("copies the live database with its uncheckpointed WAL, verifies it and prints its size (exit 0)", async () => {
    expect(fs.statSync(`${source}-wal`).size).to.be.greaterThan(250_000);
    const io = memoryIo({ FOREMAN_DATA_DIR: "data" }, { cwd: dir });
    expect(await runCli(["backup", "copy.db"], io)).to.equal(0);
    const copy = path.join(dir, "copy.db");
    const bytes = fs.statSync(copy).size;
    expect(io.stdout.text).to.match(
      new RegExp(`^backed up ${source} to ${copy}: [\\d.]+ kB \\(${bytes} bytes\\), integrity ok, 500 jobs, in .+\\n$`),
    );
    // One self-contained file, readable on its own.
    expect(fs.existsSync(`${copy}-wal`)).to.equal(false);
    const db = retainNativeHandles(new Database(copy, { readonly: true }));
    expect(db.prepare("SELECT COUNT(*) AS n FROM jobs").get()).to.deep.equal({ n: 500 });
    expect(db.prepare("PRAGMA journal_mode").get()).to.deep.equal({ journal_mode: "delete" });
    db.close();
    // The writer carries on as before.
    writer.prepare("INSERT INTO jobs (id, body) VALUES (?, ?)").run("after", "y");
  });

  it("--json reports the paths, size, pages, integrity and jobs; FOREMAN_DB_PATH wins over the data dir", async () => {
    const io = memoryIo({ FOREMAN_DB_PATH: source, FOREMAN_DATA_DIR: "/nowhere" }, { cwd: dir });
    expect(await runCli(["backup", path.join(dir, "b.db"), "--json"], io)).to.equal(0);
    const report = JSON.parse(io.stdout.text);
    expect(report).to.include({ source, path: path.join(dir, "b.db"), integrity: "ok", jobs: 500 });
    expect(report.bytes).to.equal(fs.statSync(path.join(dir, "b.db")).size);
    expect(report.pages * 4096).to.equal(report.bytes);
    expect(report.seconds).to.be.a("number");
  });

  it("keeps an existing file unless --force, and never leaves a partial copy behind", async () => {
    const target = path.join(dir, "keep.db");
    fs.writeFileSync(target, "precious");
    const io = memoryIo({ FOREMAN_DB_PATH: source }, { cwd: dir });
    expect(await runCli(["backup", "keep.db"], io)).to.equal(1);
    expect(io.stderr.text).to.include("already exists").and.include("--force");
    expect(fs.readFileSync(target, "utf8")).to.equal("precious");
    const forced = memoryIo({ FOREMAN_DB_PATH: source }, { cwd: dir });
    expect(await runCli(["backup", "keep.db", "--force"], forced)).to.equal(0);
    expect(fs.readFileSync(target).subarray(0, 15).toString()).to.equal("SQLite format 3");
    expect(fs.readdirSync(dir).filter((f) => f.includes(".partial-"))).to.deep.equal([]);
  });

  it("fails clearly (exit 1) without a database, or into a missing directory", async () => {
    const none = memoryIo({ FOREMAN_DATA_DIR: "elsewhere" }, { cwd: dir });
    expect(await runCli(["backup", "x.db"], none)).to.equal(1);
    expect(none.stderr.text).to.include(`no database at ${path.join(dir, "elsewhere", "foreman.db")}`);
    const nodir = memoryIo({ FOREMAN_DB_PATH: source }, { cwd: dir });
    expect(await runCli(["backup", "missing/x.db"], nodir)).to.equal(1);
    expect(nodir.stderr.text).to.include("does not exist");
    const self = memoryIo({ FOREMAN_DB_PATH: source }, { cwd: dir });
    expect(await runCli(["backup", source, "--force"], self)).to.equal(1);
    expect(self.stderr.text).to.include("cannot replace the database itself");
  });
});
