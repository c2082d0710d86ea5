import type http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import {
  appendRelayEnd,
  createLogger,
  type JobRecord,
  loadConfig,
  openStore,
  parseRelayLine,
  RelayWriter,
  type Store,
} from "@foreman/shared";
import { expect } from "chai";
import { makeTempDir } from "../../../../test/temp-dirs.js";
import { createApp } from "../../src/app.js";
import { attemptLinePicker, parseStreamResume } from "../../src/jobs/stream-resume.js";
import { createTargetProxy } from "../../src/proxy/target-proxy.js";

const chunk = (n: number) => JSON.stringify({ model: "m", response: `t${n}`, done: false });

describe("jobs/stream-resume: GET /jobs/<id>/stream?after=&attempt=", () => {
  describe("attemptLinePicker", () => {
    const lines = ["#start {}", "a1", "a2", "a3", "#start {}", "b1", "b2", '#end {"state":"done"}'].map(parseRelayLine);
    const picked = (attempt: number, after: number) => {
      const pick = attemptLinePicker(attempt, after);
      const out: string[] = [];
      for (const line of lines) {
        const verdict = pick(line);
        if (verdict === "stop") return [...out, "STOP"];
        if (verdict === "send") out.push(line.kind === "data" ? line.line : line.kind);
      }
      return out;
    };
    const table: Array<[attempt: number, after: number, expected: string[]]> = [
      [1, 0, ["a1", "a2", "a3", "STOP"]],
      [1, 2, ["a3", "STOP"]],
      [1, 5, ["STOP"]],
      [2, 0, ["b1", "b2", "end"]],
      [2, 1, ["b2", "end"]],
      [3, 0, ["end"]],
      [0, 0, ["STOP"]],
    ];
    for (const [attempt, after, expected] of table) {
      it(`attempt ${attempt}, after ${after} → ${expected.join(" ")}`, () => {
        expect(picked(attempt, after)).to.deep.equal(expected);
      });
    }
  });

  it("parseStreamResume: null for a plain replay; after defaults to 0; bad values name the parameter", () => {
    expect(parseStreamResume({})).to.equal(null);
    expect(parseStreamResume({ after: "3" })).to.deep.equal({ after: 3, attempt: undefined });
    expect(parseStreamResume({ attempt: "2" })).to.deep.equal({ after: 0, attempt: 2 });
    for (const query of [{ after: "-1" }, { after: "1.5" }, { after: ["1", "2"] }, { attempt: "x" }]) {
      expect(() => parseStreamResume(query)).to.throw(/^(after|attempt) must be a whole number/);
    }
  });

  describe("the route", () => {
    let store: Store;
    let dataDir: string;
    let server: http.Server;
    let base: string;

    beforeEach(async () => {
      dataDir = makeTempDir("foreman-gw-resume-");
      const config = loadConfig({ FOREMAN_DATA_DIR: dataDir, FOREMAN_RELAY_POLL_MS: "5000" });
      store = openStore({ dbPath: config.dbPath });
      const logger = createLogger({ service: "gateway", stream: new PassThrough(), level: "error" });
      const proxy = createTargetProxy({
        targetUrl: "http://127.0.0.1:9",
        token: undefined,
        connectTimeoutMs: 500,
        logger,
      });
      const app = createApp({ config, store, logger, proxy, wake: () => {} });
      server = await new Promise<http.Server>((resolve) => {
        const s = app.listen(0, "127.0.0.1", () => resolve(s));
      });
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterEach(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      store.close();
    });

    const newJob = (): JobRecord =>
      store.transitions.createJob({
        kind: "generate",
        api: "ollama",
        mode: "async",
        model: "m",
        request: { prompt: "p" },
      });

    /** The worker's side of one answer: claimed, answering (`#start`), `count` chunks from `from`. */
    const answer = (job: JobRecord, from: number, count: number): RelayWriter => {
      store.transitions.transition(job.id, "loading", { incrementAttempts: true });
      store.transitions.transition(job.id, "working");
      const relay = RelayWriter.open(dataDir, job.id);
      relay.start({ attempt: 1, status: 200, content_type: "application/x-ndjson" });
      for (let n = from; n < from + count; n++) relay.data(chunk(n));
      return relay;
    };

    const body = async (res: Response) => (await res.text()).split("\n").filter(Boolean);

    it("a plain replay is unchanged: no attempt header, the last attempt from its start", async () => {
      const job = newJob();
      answer(job, 0, 3).close();
      store.transitions.requeue(job.id);
      answer(job, 10, 2).end({ state: "done" });
      store.transitions.transition(job.id, "done");
      const res = await fetch(`${base}/jobs/${job.id}/stream`);
      expect(res.headers.get("x-foreman-attempt")).to.equal(null);
      expect(await body(res)).to.deep.equal([chunk(10), chunk(11)]);
    });

    it("after=n skips the n chunks the caller has and names the attempt", async () => {
      const job = newJob();
      answer(job, 0, 5).end({ state: "done" });
      store.transitions.transition(job.id, "done");
      const res = await fetch(`${base}/jobs/${job.id}/stream?after=3&attempt=1`);
      expect(res.status).to.equal(200);
      expect(res.headers.get("x-foreman-attempt")).to.equal("1");
      expect(await body(res)).to.deep.equal([chunk(3), chunk(4)]);
    });

    it("a job back in the queue streams its next attempt only, not the cut-short one", async () => {
      const job = newJob();
      answer(job, 0, 3).close();
      // A worker shutting down hands the job back and refunds the attempt: the next answer reuses the
      // counter's value, yet it is a new answer.
      store.transitions.requeue(job.id, { refundAttempt: true });
      const res = await fetch(`${base}/jobs/${job.id}/stream?after=0`);
      expect(res.headers.get("x-foreman-attempt")).to.equal("2");
      answer(job, 10, 2).end({ state: "done" });
      store.transitions.transition(job.id, "done");
      expect(await body(res)).to.deep.equal([chunk(10), chunk(11)]);
    });

    it("a caller whose attempt was cut short gets a 409 naming the new one", async () => {
      const job = newJob();
      answer(job, 0, 3).close();
      store.transitions.requeue(job.id);
      const res = await fetch(`${base}/jobs/${job.id}/stream?after=3&attempt=1`);
      expect(res.status).to.equal(409);
      expect(res.headers.get("x-foreman-attempt")).to.equal("2");
      expect(res.headers.get("x-foreman-job-id")).to.equal(job.id);
      expect(((await res.json()) as { error: string }).error).to.match(/is on attempt 2, not 1: .*cut short.*after=0/);
    });

    it("the response ends without an end line where a later attempt begins", async () => {
      const job = newJob();
      const relay = answer(job, 0, 3);
      // The relay is already one answer ahead of what the stream serves (the requeue and the new
      // `#start` landed between the two reads): the stream stops at the boundary.
      relay.start({ attempt: 2, status: 200, content_type: "application/x-ndjson" });
      relay.data(chunk(10));
      relay.end({ state: "failed", error: "boom" });
      const res = await fetch(`${base}/jobs/${job.id}/stream?after=1`);
      expect(res.headers.get("x-foreman-attempt")).to.equal("1");
      expect(await body(res)).to.deep.equal([chunk(1), chunk(2)]);
    });

    it("a job canceled in the queue before any answer ends with its error line", async () => {
      const job = newJob();
      store.transitions.requestCancel(job.id);
      appendRelayEnd(dataDir, job.id, { state: "canceled", status: 499, error: "job canceled" });
      const res = await fetch(`${base}/jobs/${job.id}/stream?after=0`);
      expect(res.headers.get("x-foreman-attempt")).to.equal("0");
      expect(await body(res)).to.deep.equal([JSON.stringify({ error: "job canceled" })]);
    });

    it("bad values are a 400 naming the parameter", async () => {
      const job = newJob();
      const res = await fetch(`${base}/jobs/${job.id}/stream?after=-2`);
      expect(res.status).to.equal(400);
      expect(((await res.json()) as { error: string }).error).to.match(/^after must be a whole number/);
    });
  });
});
