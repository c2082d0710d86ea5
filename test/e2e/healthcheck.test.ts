import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { foreman, ROOT, stopAll, tempDataDir } from "./harness.js";

/** Runs a built health check the way the container does: same environment, exit code and one line. */
function healthcheck(pkg: "gateway" | "worker", env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  const file = path.join(ROOT, `packages/${pkg}/dist/healthcheck.js`);
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

describe("e2e: the containers' health checks", function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  afterEach(stopAll);
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("the worker's check fails with no database, then with no worker, and passes once a worker is active", async () => {
    const empty = tempDataDir();
    dirs.push(empty);
    const none = await healthcheck("worker", { PATH: process.env.PATH, FOREMAN_DATA_DIR: empty });
    expect(none.code).to.equal(1);
    expect(none.out).to.match(/^cannot read the worker lease: /);

    const f = await foreman();
    dirs.push(f.dataDir);
    await f.startGateway();
    const noWorker = await healthcheck("worker", f.env);
    expect(noWorker).to.deep.equal({
      code: 1,
      out: "no worker holds the worker lease: no worker has started yet",
    });

    const worker = f.startWorker();
    await worker.waitForLog("active worker");
    const active = await healthcheck("worker", f.env);
    expect(active.code).to.equal(0);
    expect(active.out).to.match(
      new RegExp(`^active worker: pid ${worker.child.pid} in this container, heartbeat \\d+ ms ago$`),
    );
  });

  it("the gateway's check passes while /healthz answers and fails once the gateway is gone", async () => {
    const f = await foreman();
    dirs.push(f.dataDir);
    const gateway = await f.startGateway();
    const up = await healthcheck("gateway", f.env);
    expect(up).to.deep.equal({ code: 0, out: `http://127.0.0.1:${f.port}/healthz answered 200` });

    await gateway.kill("SIGTERM");
    const down = await healthcheck("gateway", f.env);
    expect(down.code).to.equal(1);
    expect(down.out).to.include(`http://127.0.0.1:${f.port}/healthz: fetch failed`);
  });
});
