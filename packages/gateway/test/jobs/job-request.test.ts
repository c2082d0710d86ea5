import { ValidationError } from "@foreman/shared";
import { expect } from "chai";
import { canonicalJson, parseJobRequest } from "../../src/jobs/job-request.js";

const open = { webhookAllowedHosts: [] as string[] };

describe("jobs/job-request", () => {
  it("turns a chat body into an async chat job that always streams from the target", () => {
    const { job } = parseJobRequest(
      { model: "llama3.2", messages: [{ role: "user", content: "hi" }], stream: false, metadata: { a: 1 } },
      open,
    );
    expect(job).to.include({ kind: "chat", api: "ollama", mode: "async", model: "llama3.2" });
    expect(job.request).to.deep.equal({ model: "llama3.2", messages: [{ role: "user", content: "hi" }], stream: true });
    expect(job.metadata).to.deep.equal({ a: 1 });
  });

  it("hashes the body independently of key order, so a retried request matches its first", () => {
    const a = parseJobRequest({ model: "m", prompt: "p", options: { temperature: 0, seed: 1 } }, open);
    const b = parseJobRequest({ options: { seed: 1, temperature: 0 }, prompt: "p", model: "m" }, open);
    const c = parseJobRequest({ model: "m", prompt: "q" }, open);
    expect(a.requestHash).to.equal(b.requestHash);
    expect(a.requestHash).to.not.equal(c.requestHash);
    expect(canonicalJson({ b: [1, { d: 2, c: 3 }], a: null })).to.equal('{"a":null,"b":[1,{"c":3,"d":2}]}');
  });

  it("keeps webhooks to the operator's allowlist of hosts", () => {
    const allow = { webhookAllowedHosts: ["hooks.example.com", "*.internal.example"] };
    const body = (url: string) => ({ model: "m", prompt: "p", webhook: { url } });
    expect(parseJobRequest(body("https://hooks.example.com/x"), allow).job.webhook?.url).to.equal(
      "https://hooks.example.com/x",
    );
    expect(parseJobRequest(body("http://a.internal.example:8080/x"), allow).job.webhook?.url).to.match(
      /^http:\/\/a\.internal/,
    );
    for (const url of ["https://evil.example.com/x", "http://internal.example.evil/x", "http://127.0.0.1/x"]) {
      expect(() => parseJobRequest(body(url), allow), url)
        .to.throw(ValidationError)
        .with.property("message")
        .that.matches(/is not in FOREMAN_WEBHOOK_ALLOWED_HOSTS/);
    }
  });

  it("refuses metadata larger than 16 KiB", () => {
    expect(() => parseJobRequest({ model: "m", prompt: "p", metadata: { blob: "x".repeat(17_000) } }, open)).to.throw(
      /metadata must be at most 16384 bytes/,
    );
  });
});
