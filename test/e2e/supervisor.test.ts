import net from "node:net";
import { expect } from "chai";
import { ENTRY, freePort, Proc, tempDataDir } from "./harness.js";

describe("e2e: pnpm demo / pnpm start (the supervisor)", function () {
  this.timeout(30_000);
  let supervisor: Proc | undefined;
  afterEach(async () => {
    await supervisor?.kill("SIGKILL");
  });

  it("starts the simulator when no Ollama answers, then gateway and worker with prefixed logs; the README's curl gets an answer; SIGTERM stops everything", async () => {
    const [port, simPort] = [await freePort(), await freePort()];
    supervisor = new Proc(
      "supervisor",
      ENTRY.supervisor,
      {
        PATH: process.env.PATH,
        FOREMAN_PORT: String(port),
        FOREMAN_DATA_DIR: tempDataDir(),
        FOREMAN_OLLAMA_URL: `http://127.0.0.1:${simPort}`,
      },
      ["--demo"],
    );
    await supervisor.waitForLine((l) => l.includes("starting the simulator there"));
    await supervisor.waitForLine((l) => l.startsWith("[gateway]") && l.includes("gateway listening"));
    await supervisor.waitForLine((l) => l.startsWith("[worker]") && l.includes("target up"));
    expect(supervisor.lines.some((l) => l.startsWith("[sim]"))).to.equal(true);

    // The command shown in the README, with this test's port.
    const res = await fetch(`http://127.0.0.1:${port}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" }, // what `curl -d` sends
      body: '{"model":"llama3.2","messages":[{"role":"user","content":"Hello!"}],"stream":false}',
    });
    expect(res.status).to.equal(200);
    const answer = (await res.json()) as { message: { content: string }; done: boolean };
    expect(answer.done).to.equal(true);
    expect(answer.message.content.length).to.be.greaterThan(0);

    const exit = await supervisor.kill("SIGTERM");
    expect(exit.code).to.equal(0);
    expect(supervisor.lines.some((l) => l.startsWith("[gateway]") && l.includes("stopped cleanly"))).to.equal(true);
    expect(supervisor.lines.some((l) => l.startsWith("[worker]") && l.includes("stopped cleanly"))).to.equal(true);
    const refused = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      () => false,
      () => true,
    );
    expect(refused).to.equal(true);
  });

  it("stops with exit code 2, without restarting, when a child refuses its configuration", async () => {
    supervisor = new Proc("supervisor", ENTRY.supervisor, {
      PATH: process.env.PATH,
      FOREMAN_PORT: "not-a-port",
      FOREMAN_DATA_DIR: tempDataDir(),
    });
    const exit = await supervisor.exited;
    expect(exit.code).to.equal(2);
    expect(supervisor.lines.join("\n")).to.include("FOREMAN_PORT").and.include("restarting cannot fix");
  });

  it("stops with exit code 2, without restarting, when the gateway cannot listen, and says what to change", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      supervisor = new Proc("supervisor", ENTRY.supervisor, {
        PATH: process.env.PATH,
        FOREMAN_PORT: String((taken.address() as net.AddressInfo).port),
        FOREMAN_DATA_DIR: tempDataDir(),
      });
      const exit = await supervisor.exited;
      expect(exit.code).to.equal(2);
      const text = supervisor.lines.join("\n");
      expect(text).to.include("cannot listen on 127.0.0.1:").and.include("set FOREMAN_PORT to a free port");
      expect(text).to.not.include("restarting in");
      expect(supervisor.lines.filter((l) => l.includes("gateway listening"))).to.deep.equal([]);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
