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

  describe("webhook.url", () => {
    const body = (url: string) => ({ model: "m", prompt: "p", webhook: { url } });
    const refusal = (url: string, config = open) => {
      try {
        parseJobRequest(body(url), config);
      } catch (err) {
        expect(err, url).to.be.instanceOf(ValidationError);
        return (err as Error).message;
      }
      return null;
    };

    it("refuses a literal non-public address in any spelling, naming the field and the range", () => {
      // Only parsed and classified: nothing is sent to any of these.
      const cases: Array<[string, string]> = [
        ["http://127.0.0.1:8080/x", "127.0.0.1 is not a public address (loopback)"],
        ["http://2130706433:8080/x", "127.0.0.1 is not a public address (loopback)"],
        ["http://0x7f.1/x", "127.0.0.1 is not a public address (loopback)"],
        ["http://0177.0.0.1/x", "127.0.0.1 is not a public address (loopback)"],
        ["http://127.1/x", "127.0.0.1 is not a public address (loopback)"],
        ["http://[::1]:11434/api/pull", "::1 is not a public address (loopback)"],
        ["http://[::ffff:127.0.0.1]/x", "::ffff:7f00:1 is not a public address (loopback, IPv4-mapped)"],
        ["http://[0:0:0:0:0:ffff:a00:1]/x", "::ffff:a00:1 is not a public address (private, IPv4-mapped)"],
        ["http://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public address (link-local)"],
        ["http://10.1.2.3/x", "10.1.2.3 is not a public address (private)"],
        ["https://192.168.0.10/x", "192.168.0.10 is not a public address (private)"],
        ["http://100.64.0.1/x", "100.64.0.1 is not a public address (carrier-grade NAT)"],
        ["http://0.0.0.0:11434/x", "0.0.0.0 is not a public address (unspecified)"],
        ["http://[::]/x", ":: is not a public address (unspecified)"],
        ["http://[fd00::1]/x", "fd00::1 is not a public address (unique local)"],
        ["http://[fe80::1]/x", "fe80::1 is not a public address (link-local)"],
        ["http://224.0.0.251/x", "224.0.0.251 is not a public address (multicast)"],
        ["http://255.255.255.255/x", "255.255.255.255 is not a public address (broadcast)"],
        ["http://[64:ff9b::7f00:1]/x", "64:ff9b::7f00:1 is not a public address (loopback, NAT64)"],
        ["http://[2002:a00:1::1]/x", "2002:a00:1::1 is not a public address (private, 6to4)"],
      ];
      for (const [url, why] of cases) {
        expect(refusal(url), url).to.equal(
          `webhook.url: ${why}; webhooks to non-public addresses are refused unless FOREMAN_WEBHOOK_ALLOWED_HOSTS allows them`,
        );
      }
    });

    it("leaves host names and public addresses to the delivery-time check", () => {
      for (const url of ["http://localhost:8080/x", "https://hooks.example.com/x", "http://93.184.216.34/x"]) {
        expect(refusal(url), url).to.equal(null);
        expect(parseJobRequest(body(url), open).job.webhook?.url, "stored as sent").to.equal(url);
      }
    });

    it("accepts the addresses and ranges the operator allows, and only those", () => {
      const allow = { webhookAllowedHosts: ["127.0.0.1", "::1", "10.0.0.0/8", "hooks.internal"] };
      for (const url of [
        "http://127.0.0.1:9/x",
        "http://2130706433:9/x",
        "http://[::ffff:127.0.0.1]:9/x",
        "http://[::1]:9/x",
        "http://10.200.0.1/x",
        "http://hooks.internal/x",
      ]) {
        expect(refusal(url, allow), url).to.equal(null);
      }
      expect(refusal("http://127.0.0.2/x", allow)).to.match(/127\.0\.0\.2 is not a public address \(loopback\)/);
      expect(refusal("http://192.168.1.1/x", allow)).to.match(/192\.168\.1\.1 is not a public address \(private\)/);
    });

    it("never quotes the URL's user or password back", () => {
      const message = refusal("http://alice:s3cret-pw@127.0.0.1:8080/x");
      expect(message).to.match(/^webhook\.url: 127\.0\.0\.1 is not a public address/);
      expect(message).not.to.include("alice").and.not.to.include("s3cret-pw");
    });
  });

  describe("webhook.secret", () => {
    const body = (secret: string) => ({
      model: "m",
      prompt: "p",
      webhook: { url: "https://hooks.example.com/x", secret },
    });
    const b64 = (bytes: number) => Buffer.alloc(bytes, 7).toString("base64");

    it("accepts whsec_ and the base64 of 24 to 64 bytes", () => {
      for (const secret of [
        `whsec_${b64(24)}`,
        `whsec_${b64(32)}`,
        `whsec_${b64(64)}`,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      ]) {
        expect(parseJobRequest(body(secret), open).job.webhook?.secret).to.equal(secret);
      }
    });

    it("refuses a secret that could not sign, without quoting it", () => {
      for (const secret of [
        "whsec_A",
        `whsec_${b64(23)}`,
        `whsec_${b64(65)}`,
        "whsec_not*base64*at*all",
        b64(32),
        "whsec_",
      ]) {
        expect(() => parseJobRequest(body(secret), open), secret)
          .to.throw(ValidationError)
          .with.property("message")
          .that.equals("webhook.secret must be whsec_<base64> of 24 to 64 bytes");
      }
    });
  });

  it("refuses metadata larger than 16 KiB", () => {
    expect(() => parseJobRequest({ model: "m", prompt: "p", metadata: { blob: "x".repeat(17_000) } }, open)).to.throw(
      /metadata must be at most 16384 bytes/,
    );
  });
});
