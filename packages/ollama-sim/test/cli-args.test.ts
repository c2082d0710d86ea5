import { expect } from "chai";
import { CliError, parseCliArgs, parseModelsFile } from "../src/cli-args.js";

describe("cli-args", () => {
  it("defaults to Ollama's address", () => {
    const cli = parseCliArgs([]);
    expect(cli.simulator.host).to.equal("127.0.0.1");
    expect(cli.simulator.port).to.equal(11434);
    expect(cli.help).to.equal(false);
  });

  it("reads every flag, in both spellings", () => {
    const cli = parseCliArgs([
      "--host=0.0.0.0",
      "--port",
      "0",
      "--max-loaded",
      "3",
      "--models",
      "m.json",
      "--token",
      "s3cret",
      "--load-ms=10",
      "--tps",
      "2000",
      "--keep-alive",
      "-1",
      "--pull-ms",
      "0",
      "--ollama-version",
      "0.9.0",
    ]);
    expect(cli.modelsFile).to.equal("m.json");
    expect(cli.simulator).to.deep.include({
      host: "0.0.0.0",
      port: 0,
      maxLoadedModels: 3,
      token: "s3cret",
      loadMs: 10,
      tokensPerSecond: 2000,
      defaultKeepAlive: -1,
      pullMs: 0,
      version: "0.9.0",
    });
  });

  it("rejects bad values with a message naming the flag", () => {
    expect(() => parseCliArgs(["--port", "x"])).to.throw(CliError, "--port must be an integer");
    expect(() => parseCliArgs(["--tps", "0"])).to.throw(CliError, "--tps must be a positive number");
    expect(() => parseCliArgs(["--nope", "1"])).to.throw(CliError, "unknown option --nope");
    expect(() => parseCliArgs(["--host"])).to.throw(CliError, "--host needs a value");
  });

  it("reads a models file as an array or an object", () => {
    expect(parseModelsFile('[{"name":"a"}]', "f")).to.deep.equal([{ name: "a" }]);
    expect(parseModelsFile('{"models":[{"name":"b","loadMs":5}]}', "f")).to.deep.equal([{ name: "b", loadMs: 5 }]);
    expect(() => parseModelsFile("{}", "f")).to.throw(CliError);
    expect(() => parseModelsFile("nope", "f")).to.throw(CliError, "not valid JSON");
  });
});
