import { ENTRY, Proc } from "../e2e/harness.js";

export type MemberName = "gateway-a" | "gateway-b" | "worker";

interface Member {
  name: MemberName;
  kind: "gateway" | "worker";
  port: number | undefined;
  current: Proc | null;
  /** Bumped when the running process is killed: a caller whose request began earlier lost its gateway. */
  incarnation: number;
  /** Set while killed and not yet started again. */
  down: boolean;
}

interface Tracked {
  proc: Proc;
  member: MemberName;
  /** Why it may exit: we sent SIGKILL, or SIGTERM at the end. */
  ending: "kill" | "stop" | undefined;
  /** A gateway that could not bind its port (it exits 1, as it should); the harness retries. */
  bindFailed: boolean;
}

export interface ProcessDeath {
  name: string;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  why: string;
  lastLines: string[];
}

/**
 * Two gateways and one worker on one data directory, as real processes. Kills are `kill -9` of a PID, and
 * every exit is accounted for: only a process we SIGKILLed may die, and every other one must exit 0 on the
 * final SIGTERM. A process that dies on its own is recorded and started again so the run can finish.
 */
export class Cluster {
  private readonly members: Record<MemberName, Member>;
  private readonly tracked: Tracked[] = [];
  readonly deaths: ProcessDeath[] = [];
  readonly kills: Record<MemberName, number> = { "gateway-a": 0, "gateway-b": 0, worker: 0 };
  bindRetries = 0;
  private stopping = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    ports: { a: number; b: number },
  ) {
    const member = (name: MemberName, kind: Member["kind"], port?: number): Member => ({
      name,
      kind,
      port,
      current: null,
      incarnation: 0,
      down: true,
    });
    this.members = {
      "gateway-a": member("gateway-a", "gateway", ports.a),
      "gateway-b": member("gateway-b", "gateway", ports.b),
      worker: member("worker", "worker"),
    };
  }

  gatewayUrl(name: "gateway-a" | "gateway-b"): string {
    return `http://127.0.0.1:${this.members[name].port}`;
  }

  incarnation(name: MemberName): number {
    return this.members[name].incarnation;
  }

  isDown(name: MemberName): boolean {
    return this.members[name].down;
  }

  /** Every process started, for the report. */
  started(): number {
    return this.tracked.length;
  }

  async start(name: MemberName): Promise<void> {
    const m = this.members[name];
    for (let attempt = 0; !this.stopping; attempt++) {
      const env = { ...this.env, ...(m.port !== undefined ? { FOREMAN_PORT: String(m.port) } : {}) };
      const proc = new Proc(name, m.kind === "gateway" ? ENTRY.gateway : ENTRY.worker, env);
      const t: Tracked = { proc, member: name, ending: undefined, bindFailed: false };
      this.tracked.push(t);
      m.current = proc;
      proc.exited.then((exit) => this.onExit(t, exit));
      if (m.kind === "worker") {
        m.down = false;
        return;
      }
      const outcome = await Promise.race([
        proc.waitForLog("gateway listening", 60_000).then(() => "listening" as const),
        proc.exited.then(() => "exited" as const),
      ]);
      if (outcome === "listening") {
        m.down = false;
        return;
      }
      if (this.stopping) return;
      // The killed predecessor's port is released as it dies, but the kernel may take a moment.
      const bind = proc.lines.some((l) => l.includes("cannot listen") && l.includes("EADDRINUSE"));
      if (!bind || attempt >= 20) throw new Error(`${name} did not start:\n${proc.lines.slice(-10).join("\n")}`);
      t.bindFailed = true;
      this.bindRetries++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** `kill -9` of the member's process; resolves once it is gone. */
  async kill(name: MemberName): Promise<void> {
    const m = this.members[name];
    const proc = m.current;
    if (!proc || m.down) return;
    const t = this.tracked.find((x) => x.proc === proc)!;
    t.ending = "kill";
    m.down = true;
    m.incarnation++;
    this.kills[name]++;
    await proc.kill("SIGKILL");
  }

  /** Waits for the worker to hold the lease (after a start, or a restart behind a dead worker's lease). */
  async workerActive(timeoutMs: number): Promise<void> {
    const proc = this.members.worker.current;
    if (!proc) throw new Error("no worker");
    await proc.waitForLog("active worker", timeoutMs);
  }

  private onExit(t: Tracked, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (t.bindFailed) return;
    const pid = t.proc.child.pid;
    const death = (why: string) =>
      this.deaths.push({ name: t.member, pid, ...exit, why, lastLines: t.proc.lines.slice(-20) });
    if (t.ending === "kill") {
      if (exit.signal !== "SIGKILL") death("killed with SIGKILL but exited otherwise");
      return;
    }
    if (t.ending === "stop") {
      if (exit.code !== 0 || exit.signal !== null) death("did not exit 0 on SIGTERM");
      return;
    }
    death("died without being killed");
    const m = this.members[t.member];
    if (m.current !== t.proc) return;
    m.down = true;
    m.incarnation++;
    if (!this.stopping) void this.start(t.member).catch(() => undefined);
  }

  /** SIGTERM to every running process; each must exit 0 within `timeoutMs`, or it is SIGKILLed and recorded. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const running = this.tracked.filter((t) => t.proc.child.exitCode === null && t.proc.child.signalCode === null);
    await Promise.all(
      running.map(async (t) => {
        t.ending = "stop";
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((r) => {
          timer = setTimeout(() => r("late"), timeoutMs);
        });
        const result = await Promise.race([t.proc.kill("SIGTERM"), late]);
        clearTimeout(timer);
        if (result === "late") {
          t.ending = "kill";
          this.deaths.push({
            name: t.member,
            pid: t.proc.child.pid,
            code: null,
            signal: null,
            why: `did not exit within ${timeoutMs} ms of SIGTERM`,
            lastLines: t.proc.lines.slice(-20),
          });
          await t.proc.kill("SIGKILL");
        }
      }),
    );
  }

  /** Last resort on any failure: SIGKILL every process this cluster started that still runs. */
  async forceStop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.tracked.map((t) => {
        if (t.ending === undefined) t.ending = "kill";
        return t.proc.kill("SIGKILL");
      }),
    );
  }

  /** Every line every process printed that matches `test`, for the report. */
  grepLogs(test: (line: string) => boolean): Array<{ name: string; line: string }> {
    return this.tracked.flatMap((t) => t.proc.lines.filter(test).map((line) => ({ name: t.member, line })));
  }
}
