import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { createLogger, ensureRelay, openStore, relayPath, writeArtifact } from "@foreman/shared";
import { expect } from "chai";
import { makeTempDir } from "../../../test/temp-dirs.js";
import { createRetentionPruner } from "../src/retention-pruner.js";

describe("retention-pruner", () => {
  it("deletes jobs ended before the retention period, in batches, with their files; keeps the rest", async () => {
    const dataDir = makeTempDir("foreman-prune-");
    let t = 1_000_000;
    const now = () => t;
    const store = openStore({ dbPath: path.join(dataDir, "foreman.db"), now });
    const logger = createLogger({ service: "worker", stream: new PassThrough() });
    const make = (end: boolean) => {
      const job = store.transitions.createJob({
        kind: "chat",
        api: "ollama",
        mode: "async",
        model: "m",
        request: {},
        webhook: { url: "http://127.0.0.1:1/h" },
      });
      ensureRelay(dataDir, job.id);
      store.artifacts.record(writeArtifact(dataDir, job.id, "result.json", "application/json", "{}", t));
      if (end) store.transitions.transition(job.id, "canceled");
      return job.id;
    };
    const old = [make(true), make(true), make(true), make(true), make(true)];
    const running = make(false);
    t += 10_000;
    const recent = make(true);
    t += 1000;
    const pruner = createRetentionPruner({
      store,
      logger,
      dataDir,
      retentionMs: 5000,
      intervalMs: 60_000,
      batchSize: 2,
      now,
    });
    expect(await pruner.runOnce()).to.equal(5);
    for (const id of old) {
      expect(store.jobs.get(id)).to.equal(null);
      expect(fs.existsSync(relayPath(dataDir, id))).to.equal(false);
      expect(fs.existsSync(path.join(dataDir, "artifacts", id))).to.equal(false);
    }
    expect(store.jobs.get(running)?.state).to.equal("queued");
    expect(store.jobs.get(recent)?.state).to.equal("canceled");
    expect(store.artifacts.forJob(recent)).to.have.length(1);
    const orphans = store.db
      .prepare("SELECT COUNT(*) AS n FROM webhook_outbox WHERE job_id NOT IN (SELECT id FROM jobs)")
      .get();
    expect(orphans).to.deep.equal({ n: 0 });
    expect(await pruner.runOnce()).to.equal(0);
    store.close();
  });

  it("keeps synchronous jobs for their own, shorter period", async () => {
    const dataDir = makeTempDir("foreman-prune-");
    let t = 1_000_000;
    const now = () => t;
    const store = openStore({ dbPath: path.join(dataDir, "foreman.db"), now });
    const logger = createLogger({ service: "worker", stream: new PassThrough() });
    const ended = (mode: "sync" | "async") => {
      const job = store.transitions.createJob({ kind: "chat", api: "ollama", mode, model: "m", request: {} });
      ensureRelay(dataDir, job.id);
      store.transitions.transition(job.id, "canceled");
      return job.id;
    };
    const sync = ended("sync");
    const async = ended("async");
    t += 2000;
    const pruner = createRetentionPruner({
      store,
      logger,
      dataDir,
      retentionMs: 60_000,
      syncRetentionMs: 1000,
      intervalMs: 60_000,
      now,
    });
    expect(await pruner.runOnce()).to.equal(1);
    expect(store.jobs.get(sync)).to.equal(null);
    expect(fs.existsSync(relayPath(dataDir, sync))).to.equal(false);
    expect(store.jobs.get(async)?.state).to.equal("canceled");
    store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
});
