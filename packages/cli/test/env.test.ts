import path from "node:path";
import { expect } from "chai";
import { readDbPath, readForemanEnv, readTargetEnv, secretValues } from "../src/env.js";
import { UsageError } from "../src/exit-codes.js";

describe("env", () => {
  it("defaults to the local gateway and target, and reads the tokens and the embedder", () => {
    expect(readForemanEnv({})).to.deep.equal({ baseUrl: "http://127.0.0.1:11435", token: undefined });
    expect(readTargetEnv({})).to.deep.equal({
      baseUrl: "http://127.0.0.1:11434",
      token: undefined,
      embedModel: undefined,
    });
    expect(
      readTargetEnv({
        FOREMAN_OLLAMA_URL: "https://gpu.example:11434/",
        FOREMAN_OLLAMA_TOKEN: "t0ken",
        FOREMAN_EMBED_MODEL: "nomic-embed-text",
      }),
    ).to.deep.equal({ baseUrl: "https://gpu.example:11434", token: "t0ken", embedModel: "nomic-embed-text" });
    expect(readForemanEnv({ FOREMAN_URL: "http://h/foreman/", FOREMAN_API_TOKEN: "" })).to.deep.equal({
      baseUrl: "http://h/foreman",
      token: undefined,
    });
  });

  it("a bad URL or token is a usage error that names the variable and never shows a secret", () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ FOREMAN_URL: "127.0.0.1:11435" }, /FOREMAN_URL must be an (absolute )?http/],
      [{ FOREMAN_URL: "ftp://h" }, /FOREMAN_URL must be an http or https URL/],
      [
        { FOREMAN_URL: "http://u:hunter2@h" },
        /FOREMAN_URL must not contain credentials: put the token in FOREMAN_API_TOKEN/,
      ],
      [{ FOREMAN_URL: "http://h?x=1" }, /must not have a query/],
      [{ FOREMAN_API_TOKEN: "has space" }, /FOREMAN_API_TOKEN must be printable ASCII/],
    ];
    for (const [env, message] of bad) {
      const error = (() => {
        try {
          readForemanEnv(env);
        } catch (e) {
          return e;
        }
      })() as UsageError;
      expect(error, JSON.stringify(env)).to.be.instanceOf(UsageError);
      expect(error.exitCode).to.equal(2);
      expect(error.message).to.match(message).and.not.include("hunter2").and.not.include("has space");
    }
    expect(() => readTargetEnv({ FOREMAN_OLLAMA_URL: "http://u:p@h" })).to.throw(/FOREMAN_OLLAMA_TOKEN/);
  });

  it("finds the database as gateway and worker do, relative to the working directory", () => {
    expect(readDbPath({}, "/srv")).to.equal(path.join("/srv", "data", "foreman.db"));
    expect(readDbPath({ FOREMAN_DATA_DIR: "/var/lib/foreman" }, "/srv")).to.equal("/var/lib/foreman/foreman.db");
    expect(readDbPath({ FOREMAN_DATA_DIR: "/x", FOREMAN_DB_PATH: "db/f.db" }, "/srv")).to.equal("/srv/db/f.db");
  });

  it("knows which values are secrets", () => {
    expect(secretValues({ FOREMAN_API_TOKEN: "a", FOREMAN_OLLAMA_TOKEN: "b", FOREMAN_URL: "c" })).to.deep.equal([
      "a",
      "b",
    ]);
  });
});
