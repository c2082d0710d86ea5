import { expect } from "chai";
import { runCli } from "../../src/cli.js";
import { renderStatus } from "../../src/commands/status.js";
import { styleFor } from "../../src/style.js";
import { type FakeOpsServer, sampleStatus, startFakeOpsServer } from "../fake-ops-server.js";
import { memoryIo } from "../memory-io.js";

const TOKEN = "status-test-token-0123456789";

describe("foreman status", () => {
  let server: FakeOpsServer;
  const env = () => ({ FOREMAN_URL: server.url, FOREMAN_API_TOKEN: TOKEN });

  beforeEach(async () => {
    server = await startFakeOpsServer({ token: TOKEN });
  });
  afterEach(async () => {
    await server.close();
  });

  it("shows the target, worker, models, queue, webhooks and last hour at a glance (exit 0)", async () => {
    const io = memoryIo(env());
    expect(await runCli(["status"], io)).to.equal(0);
    const out = io.stdout.text;
    expect(out).to.match(/^target {4}up since .* \(3h 12m\) · http:\/\/ollama\.internal:11434 · Ollama 0\.32\.14$/m);
    expect(out).to.match(/^worker {4}active · pid 4242 on worker-1 · heartbeat 250 ms ago · no standby$/m);
    expect(out).to.match(/^ {10}working 01JCURRENTJOB0000000000000 \(llama3\.2:latest\) for 1\.2 s$/m);
    expect(out).to.match(/^ {10}nomic-embed-text:latest +pinned +274 MB +embedder$/m);
    expect(out).to.match(/^ {10}llama3\.2:latest +in 4m \d\ds +2\.0 GB$/m);
    expect(out).to.match(/^queue {5}3 queued, oldest waiting 5\.0 s$/m);
    expect(out).to.match(/^ {10}qwen3:8b +1 +2\.\d s$/m);
    expect(out).to.match(/^webhooks {2}4 waiting to be delivered$/m);
    expect(out).to.match(/^last hour 10 done · 2 failed · 1 canceled · 3 queued · 0 loading · 1 working$/m);
    expect(server.seen.at(-1)?.headers.authorization).to.equal(`Bearer ${TOKEN}`);
    expect(io.stdout.text + io.stderr.text).to.not.include(TOKEN);
  });

  it("--json prints the route's answer unchanged", async () => {
    const io = memoryIo(env());
    expect(await runCli(["status", "--json"], io)).to.equal(0);
    expect(JSON.parse(io.stdout.text)).to.deep.equal(JSON.parse(JSON.stringify(server.status)));
  });

  it("exits 3 when foreman answers that the target is down, and says since when and why", async () => {
    server.status = sampleStatus(Date.now());
    server.status.target = {
      ...server.status.target,
      reachable: false,
      since: new Date(Date.now() - 120_000).toISOString(),
      error: "connect ECONNREFUSED 10.0.0.5:11434",
    };
    const io = memoryIo(env());
    expect(await runCli(["status"], io)).to.equal(3);
    expect(io.stdout.text).to.match(/^target {4}down since .* \(2m 0\ds\) · http:\/\/ollama\.internal:11434$/m);
    expect(io.stdout.text).to.match(/^ {10}last seen .* · connect ECONNREFUSED 10\.0\.0\.5:11434$/m);
    const json = memoryIo(env());
    expect(await runCli(["status", "--json"], json)).to.equal(3);
    expect(JSON.parse(json.stdout.text).target.reachable).to.equal(false);
  });

  it("a wrong token is exit 1 with a hint, and neither token is printed", async () => {
    const wrong = "not-the-right-token-987654";
    const io = memoryIo({ FOREMAN_URL: server.url, FOREMAN_API_TOKEN: wrong });
    expect(await runCli(["status"], io)).to.equal(1);
    expect(io.stderr.text)
      .to.include("answered GET /status with 401")
      .and.include("FOREMAN_API_TOKEN is not the token");
    expect(io.stdout.text + io.stderr.text)
      .to.not.include(wrong)
      .and.not.include(TOKEN);
    const none = memoryIo({ FOREMAN_URL: server.url });
    expect(await runCli(["status"], none)).to.equal(1);
    expect(none.stderr.text).to.include("set FOREMAN_API_TOKEN");
  });

  it("exits 3 when foreman cannot be reached", async () => {
    const url = server.url;
    await server.close();
    const io = memoryIo({ FOREMAN_URL: url });
    expect(await runCli(["status"], io)).to.equal(3);
    expect(io.stderr.text).to.include(`cannot reach foreman at ${url}`).and.include("ECONNREFUSED");
    server = await startFakeOpsServer();
  });

  it("a gateway without the route is exit 1 saying so", async () => {
    const io = memoryIo({ FOREMAN_URL: `${server.url}/nothing-here`, FOREMAN_API_TOKEN: TOKEN });
    expect(await runCli(["status"], io)).to.equal(1);
    expect(io.stderr.text).to.include("no such route");
  });

  it("renders an idle, worker-less, empty foreman without inventing figures", () => {
    const now = Date.now();
    const status = sampleStatus(now);
    status.worker = {
      active: false,
      standby: false,
      pid: null,
      hostname: null,
      heartbeat_age_ms: null,
      current_job: null,
    };
    status.models = { resident: [], embedder: { name: "nomic-embed-text:latest", resident: false } };
    status.queue = { depth: 0, oldest_queued_age_ms: null, by_model: [] };
    status.jobs_last_hour = {};
    const text = renderStatus(status, now, styleFor({ write: () => true }, {}));
    expect(text).to.match(/^worker {4}no active worker · no heartbeat · no standby$/m);
    expect(text).to.match(/^models {4}none resident$/m);
    expect(text).to.include("the embedder nomic-embed-text:latest is not resident");
    expect(text).to.match(/^queue {5}empty$/m);
    expect(text).to.match(/^last hour 0 done · 0 failed · 0 canceled · 0 queued · 0 loading · 0 working$/m);
  });
});
