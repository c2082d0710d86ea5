import fs from "node:fs";
import { expect } from "chai";
import { ENTRY, type Foreman, foreman, Proc, stopAll } from "./harness.js";
import { startReceiver } from "./webhook-receiver.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

interface Delivery {
  type: string;
  status: string;
  attempts: number;
  last_error: string | null;
}

async function post(f: Foreman, webhook: Record<string, unknown>) {
  const res = await fetch(`${f.url}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "llama3.2", prompt: "hi", webhook }),
  });
  return { status: res.status, body: (await res.json()) as { id?: string; error?: string } };
}

async function deliveries(f: Foreman, id: string): Promise<Delivery[]> {
  const job = (await (await fetch(`${f.url}/jobs/${id}`)).json()) as { webhook: { deliveries: Delivery[] } };
  return job.webhook.deliveries;
}

// No target is running: each job stays queued, and its job.queued event is all there is to deliver.
describe("e2e: where webhooks may go", function () {
  this.timeout(30_000);
  const dataDirs: string[] = [];
  after(async () => {
    await stopAll();
    for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(allowedHosts: string): Promise<Foreman & { worker: Proc; gateway: Proc }> {
    const f = await foreman({ env: { FOREMAN_WEBHOOK_ALLOWED_HOSTS: allowedHosts, FOREMAN_WEBHOOK_SECRET: SECRET } });
    dataDirs.push(f.dataDir);
    const gateway = await f.startGateway();
    const worker = f.startWorker();
    await worker.waitForLog("active worker");
    return Object.assign(f, { worker, gateway });
  }

  describe("with no allowlist", () => {
    let f: Foreman & { worker: Proc; gateway: Proc };
    before(async () => {
      f = await start("");
    });

    it("POST /jobs answers 400 for a literal loopback address however it is spelled", async () => {
      const why = "not a public address (loopback";
      for (const url of [
        "http://127.0.0.1:11434/api/pull",
        "http://2130706433:11434/api/pull",
        "http://0x7f.1:11434/x",
        "http://0177.0.0.1/x",
        "http://[::1]:11434/x",
        "http://[::ffff:127.0.0.1]:11434/x",
        "http://hook-user:hook-pass@127.0.0.1:8080/x",
      ]) {
        const { status, body } = await post(f, { url });
        expect(status, url).to.equal(400);
        expect(body.error, url).to.match(/^webhook\.url: \S+ is not a public address \(loopback/);
        expect(body.error, url).to.include(why).and.include("FOREMAN_WEBHOOK_ALLOWED_HOSTS");
        expect(body.error).not.to.include("hook-pass");
      }
    });

    it("POST /jobs answers 400 for a secret that could not sign", async () => {
      const { status, body } = await post(f, { url: "https://hooks.example.com/x", secret: "whsec_A" });
      expect(status).to.equal(400);
      expect(body.error).to.equal("webhook.secret must be whsec_<base64> of 24 to 64 bytes");
    });

    it("refuses a delivery to a name that resolves to loopback, once, and shows why on the job", async () => {
      const receiver = await startReceiver(SECRET);
      try {
        const port = new URL(receiver.url).port;
        const { status, body } = await post(f, { url: `http://localhost:${port}/hook` });
        expect(status).to.equal(202);
        const line = await f.worker.waitForLog("webhook delivery given up");
        expect(line).to.include({ job_id: body.id, event: "job.queued", attempt: 1 });
        expect(String(line.error)).to.match(/^refused: localhost resolves only to non-public addresses \(loopback/);
        const [queued] = await deliveries(f, body.id!);
        expect(queued).to.include({ type: "job.queued", status: "failed", attempts: 1, last_error: line.error });
        expect(receiver.attempts.size, "nothing reached the receiver").to.equal(0);
      } finally {
        await receiver.close();
      }
    });
  });

  describe("with loopback allowed", () => {
    it("delivers to a name that resolves to loopback, and never logs the URL's user or password", async () => {
      const f = await start("127.0.0.1,::1");
      const receiver = await startReceiver(SECRET, (attempt) => (attempt === 1 ? 500 : 204));
      try {
        const url = receiver.url.replace("http://127.0.0.1", "http://hook-user:hook-pass@localhost");
        const { status, body } = await post(f, { url });
        expect(status).to.equal(202);
        await receiver.until(() => receiver.accepted.some((e) => e.jobId === body.id));
        const failed = await f.worker.waitForLog("webhook delivery failed");
        expect(failed).to.include({ job_id: body.id, http_status: 500 });
        await f.worker.waitForLog("webhook delivered");
        for (const p of [f.worker, f.gateway]) {
          const text = p.lines.join("\n");
          expect(text, p.name).not.to.include("hook-pass");
          expect(text, p.name).not.to.include("hook-user");
        }
      } finally {
        await receiver.close();
      }
    });
  });

  it("the worker refuses a FOREMAN_WEBHOOK_SECRET that could not sign, in one line", async () => {
    const f = await foreman();
    dataDirs.push(f.dataDir);
    const p = new Proc("worker", ENTRY.worker, { ...f.env, FOREMAN_WEBHOOK_SECRET: "whsec_A" });
    const exit = await p.exited;
    expect(exit.code).to.equal(2);
    expect(p.lines).to.have.length(1);
    expect(p.lines[0]).to.match(/FOREMAN_WEBHOOK_SECRET must be whsec_<base64> of 24 to 64 bytes/);
    expect(p.lines[0]).not.to.include("whsec_A;").and.not.include('"whsec_A"');
  });
});
