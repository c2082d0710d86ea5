import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { CONFIG_KEYS, configSecrets, loadConfig, redactConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";

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
    [
      "FOREMAN_WEBHOOK_SECRET",
      "plain",
      /^FOREMAN_WEBHOOK_SECRET .*whsec_<base64>.*; example: FOREMAN_WEBHOOK_SECRET=whsec_/,
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
