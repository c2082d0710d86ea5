import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { CONFIG_KEYS, configSecrets, loadConfig, redactConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";
import { WEBHOOK_DEFAULTS, webhookSettings } from "../src/webhook-defaults.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");

describe("config", () => {
  it("applies the documented defaults", () => {
    const c = loadConfig({});
    expect(c.host).to.equal("127.0.0.1");
    expect(c.port).to.equal(11435);
    expect(c.dataDir).to.equal(path.resolve("./data"));
    expect(c.dbPath).to.equal(path.join(path.resolve("./data"), "foreman.db"));
    expect(c.ollamaUrl).to.equal("http://127.0.0.1:11434");
    expect(c.logLevel).to.equal("info");
    expect(c.ollamaToken).to.equal(undefined);
    expect(Object.isFrozen(c)).to.equal(true);
  });

  it("derives the database path from the data dir and trims the target URL", () => {
    const c = loadConfig({ FOREMAN_DATA_DIR: "/tmp/fm", FOREMAN_OLLAMA_URL: "http://10.0.0.5:11434/" });
    expect(c.dbPath).to.equal("/tmp/fm/foreman.db");
    expect(c.ollamaUrl).to.equal("http://10.0.0.5:11434");
  });

  it("parses the body limit into bytes once, at start", () => {
    expect(loadConfig({}).bodyLimit).to.equal(10 * 1024 * 1024);
    expect(loadConfig({ FOREMAN_BODY_LIMIT: "512kb" }).bodyLimit).to.equal(512 * 1024);
    expect(() => loadConfig({ FOREMAN_BODY_LIMIT: "lots" })).to.throw(/FOREMAN_BODY_LIMIT .*size such as 10mb/);
  });

  it("takes the webhook defaults from their one owner, and hands the dispatcher its settings", () => {
    const settings = webhookSettings(loadConfig({}));
    expect(settings).to.deep.equal({
      timeoutMs: WEBHOOK_DEFAULTS.timeoutMs,
      retryBaseMs: WEBHOOK_DEFAULTS.retryBaseMs,
      retryMaxDelayMs: WEBHOOK_DEFAULTS.retryMaxDelayMs,
      retryForMs: WEBHOOK_DEFAULTS.retryForMs,
      concurrency: WEBHOOK_DEFAULTS.concurrency,
      endpointConcurrency: WEBHOOK_DEFAULTS.endpointConcurrency,
      disableAfterMs: WEBHOOK_DEFAULTS.disableAfterMs,
      disabledForMs: WEBHOOK_DEFAULTS.disabledForMs,
      allowedHosts: [],
      defaultSecret: undefined,
    });
    expect(WEBHOOK_DEFAULTS.disableAfterMs).to.equal(5 * 86_400_000);
    const set = webhookSettings(
      loadConfig({
        FOREMAN_WEBHOOK_ENDPOINT_CONCURRENCY: "1",
        FOREMAN_WEBHOOK_DISABLE_AFTER_MS: "0",
        FOREMAN_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1, ::1,10.0.0.0/8,*.Example.com",
      }),
    );
    expect(set).to.include({ endpointConcurrency: 1, disableAfterMs: 0 });
    expect(set.allowedHosts).to.deep.equal(["127.0.0.1", "::1", "10.0.0.0/8", "*.example.com"]);
  });

  it("parses the wake action: off by default, MAC normalized, broadcast address and port", () => {
    const off = loadConfig({});
    expect([off.wakeUrl, off.wakeMac, off.wakeMethod, off.wakeIntervalMs]).to.deep.equal([
      undefined,
      undefined,
      "POST",
      60_000,
    ]);
    expect(off.wakeBroadcast).to.deep.equal({ address: "255.255.255.255", port: 9 });
    const on = loadConfig({
      FOREMAN_WAKE_URL: "http://user:pw@127.0.0.1:8123/api/webhook/wake?token=t",
      FOREMAN_WAKE_METHOD: "get",
      FOREMAN_WAKE_MAC: "52-54-00-AB-cd-EF",
      FOREMAN_WAKE_BROADCAST: "127.0.0.1:4009",
    });
    expect(on.wakeUrl).to.equal("http://user:pw@127.0.0.1:8123/api/webhook/wake?token=t");
    expect(on.wakeMethod).to.equal("GET");
    expect(on.wakeMac).to.equal("52:54:00:ab:cd:ef");
    expect(on.wakeBroadcast).to.deep.equal({ address: "127.0.0.1", port: 4009 });
    expect(loadConfig({ FOREMAN_WAKE_MAC: "525400abcdef" }).wakeMac).to.equal("52:54:00:ab:cd:ef");
    expect(loadConfig({ FOREMAN_WAKE_BROADCAST: "[::1]:7" }).wakeBroadcast).to.deep.equal({ address: "::1", port: 7 });
    expect(loadConfig({ FOREMAN_WAKE_BROADCAST: "192.168.1.255" }).wakeBroadcast).to.deep.equal({
      address: "192.168.1.255",
      port: 9,
    });
    expect(JSON.stringify(redactConfig(on))).to.not.include("pw@");
    expect(configSecrets(on)).to.include("http://user:pw@127.0.0.1:8123/api/webhook/wake?token=t");
  });

  it("reads no bare OLLAMA_* variable", () => {
    const c = loadConfig({ OLLAMA_HOST: "http://1.2.3.4:5", OLLAMA_URL: "http://1.2.3.4:5" });
    expect(c.ollamaUrl).to.equal("http://127.0.0.1:11434");
  });

  const bad: Array<[string, string, RegExp]> = [
    ["FOREMAN_PORT", "abc", /^FOREMAN_PORT must be a number \(got "abc"\); example: FOREMAN_PORT=11435$/],
    ["FOREMAN_PORT", "70000", /^FOREMAN_PORT must be a valid port \(got "70000"\); example: FOREMAN_PORT=11435$/],
    [
      "FOREMAN_OLLAMA_URL",
      "ftp://x",
      /^FOREMAN_OLLAMA_URL must be a valid uri with a scheme matching the http\|https pattern/,
    ],
    [
      "FOREMAN_LOG_LEVEL",
      "loud",
      /^FOREMAN_LOG_LEVEL must be one of \[error, warn, info, http, verbose, debug, silly\]/,
    ],
    ["FOREMAN_HEARTBEAT_MS", "-5", /^FOREMAN_HEARTBEAT_MS must be greater than or equal to 50/],
    ["FOREMAN_WAKE_MAC", "52:54:00:12:34", /^FOREMAN_WAKE_MAC .*MAC address such as .*; example: FOREMAN_WAKE_MAC=/],
    ["FOREMAN_WAKE_BROADCAST", "300.1.1.1:9", /^FOREMAN_WAKE_BROADCAST contains an invalid value/],
    ["FOREMAN_WAKE_BROADCAST", "10.0.0.255:70000", /^FOREMAN_WAKE_BROADCAST contains an invalid value/],
    ["FOREMAN_WAKE_BROADCAST", "wol.example:9", /^FOREMAN_WAKE_BROADCAST .*IPv4 address\[:port\]/],
    ["FOREMAN_WAKE_METHOD", "DELETE", /^FOREMAN_WAKE_METHOD must be one of \[GET, POST, PUT\]/],
    [
      "FOREMAN_WEBHOOK_SECRET",
      "plain",
      /^FOREMAN_WEBHOOK_SECRET .*whsec_<base64>.*; example: FOREMAN_WEBHOOK_SECRET=whsec_/,
    ],
    [
      "FOREMAN_WEBHOOK_SECRET",
      "whsec_A",
      /^FOREMAN_WEBHOOK_SECRET must be whsec_<base64> of 24 to 64 bytes \(the part after whsec_ is not base64\); example: /,
    ],
    [
      "FOREMAN_WEBHOOK_SECRET",
      "whsec_YWFh",
      /^FOREMAN_WEBHOOK_SECRET must be whsec_<base64> of 24 to 64 bytes \(it decodes to 3\); example: /,
    ],
    [
      "FOREMAN_WEBHOOK_ALLOWED_HOSTS",
      "127.0.0.1,10.0.0.0/33",
      /^FOREMAN_WEBHOOK_ALLOWED_HOSTS entry "10\.0\.0\.0\/33" is not a CIDR range such as 10\.0\.0\.0\/8 or fd00::\/8 \(got "127\.0\.0\.1,10\.0\.0\.0\/33"\); example: /,
    ],
  ];
  for (const [key, value, pattern] of bad) {
    it(`refuses ${key}=${value} with one line naming the variable and an example`, () => {
      let error: unknown;
      try {
        loadConfig({ [key]: value });
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).to.match(pattern);
      expect(message).to.not.include("\n");
    });
  }

  it("never echoes a secret's value in its error", () => {
    expect(() => loadConfig({ FOREMAN_WEBHOOK_SECRET: "hunter2" }))
      .to.throw(ConfigError)
      .with.property("message")
      .that.does.not.include("hunter2");
  });

  it("refuses a stale bound that is not above two heartbeats", () => {
    expect(() => loadConfig({ FOREMAN_HEARTBEAT_MS: "1000", FOREMAN_WORKER_STALE_MS: "1500" })).to.throw(
      /FOREMAN_WORKER_STALE_MS must be more than twice FOREMAN_HEARTBEAT_MS/,
    );
  });

  it("refuses a target URL with a user name or password, and never prints the password", () => {
    for (const url of [
      "http://alice:hunter2@10.0.0.5:11434",
      "http://alice@10.0.0.5:11434",
      "https://:hunter2@host/x",
    ]) {
      let error: unknown;
      try {
        loadConfig({ FOREMAN_OLLAMA_URL: url });
      } catch (err) {
        error = err;
      }
      expect(error, url).to.be.instanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).to.match(/^FOREMAN_OLLAMA_URL must not contain a user name or password/);
      expect(message).to.include("FOREMAN_OLLAMA_TOKEN").and.not.include("hunter2").and.not.include("alice");
      expect(message).to.not.include("\n");
    }
    // A URL that is bad for another reason is shown without its credentials too.
    const other = () => loadConfig({ FOREMAN_OLLAMA_URL: "ftp://alice:hunter2@host" });
    expect(other).to.throw(ConfigError).with.property("message").that.does.not.include("hunter2");
  });

  it("bounds the queue, connections, long polls and stream followers by default", () => {
    const c = loadConfig({});
    expect(c).to.include({
      maxQueuedJobs: 100_000,
      maxQueuedBytes: 1024 ** 3,
      maxConnections: 1024,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 120_000,
      keepAliveTimeoutMs: 65_000,
      maxLongPolls: 256,
      maxStreamFollowers: 256,
      dbCheckMs: 2000,
    });
    expect(loadConfig({ FOREMAN_MAX_QUEUED_BYTES: "512mb" }).maxQueuedBytes).to.equal(512 * 1024 ** 2);
    expect(() => loadConfig({ FOREMAN_MAX_QUEUED_JOBS: "0" })).to.throw(/^FOREMAN_MAX_QUEUED_JOBS must be/);
    expect(() => loadConfig({ FOREMAN_HEADERS_TIMEOUT_MS: "5000", FOREMAN_REQUEST_TIMEOUT_MS: "1000" })).to.throw(
      /FOREMAN_HEADERS_TIMEOUT_MS must not be more than FOREMAN_REQUEST_TIMEOUT_MS/,
    );
  });

  it("redacts every secret when printed", () => {
    const c = loadConfig({
      FOREMAN_OLLAMA_TOKEN: "tok-aaa",
      FOREMAN_API_TOKEN: "api-token-0123456789",
      FOREMAN_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    });
    const printed = JSON.stringify(redactConfig(c));
    expect(printed).to.not.include("tok-aaa").and.not.include("api-token-0123456789").and.not.include("whsec_Mf");
    expect(configSecrets(c)).to.have.members([
      "tok-aaa",
      "api-token-0123456789",
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ]);
  });

  it(".env.example documents every key", () => {
    const example = fs.readFileSync(path.join(ROOT, ".env.example"), "utf8");
    for (const key of Object.keys(CONFIG_KEYS)) {
      expect(example, key).to.match(new RegExp(`^#?\\s*${key}=`, "m"));
    }
  });
});
