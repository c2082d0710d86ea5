import { expect } from "chai";
import { runCli } from "../../src/cli.js";
import { parseModelOptions } from "../../src/commands/run.js";
import { memoryIo } from "../memory-io.js";

describe("foreman run", () => {
  it("reads model options as JSON when they are JSON, else as text", () => {
    expect(
      parseModelOptions(["temperature=0", "num_predict=64", 'stop=["\\n"]', "seed=42", "mode=fast", "x=a=b"]),
    ).to.deep.equal({ temperature: 0, num_predict: 64, stop: ["\n"], seed: 42, mode: "fast", x: "a=b" });
  });

  it("a malformed option or format is a usage error (exit 2) before anything is sent", async () => {
    const unreachable = { FOREMAN_URL: "http://127.0.0.1:9" };
    const option = memoryIo(unreachable);
    expect(await runCli(["run", "llama3.2", "hi", "-o", "temperature"], option)).to.equal(2);
    expect(option.stderr.text).to.include("--option expects key=value");
    const format = memoryIo(unreachable);
    expect(await runCli(["run", "llama3.2", "hi", "--format", "yaml"], format)).to.equal(2);
    expect(format.stderr.text).to.include('--format must be "json" or a JSON schema object');
    const missing = memoryIo(unreachable);
    expect(await runCli(["run", "llama3.2"], missing)).to.equal(2);
    expect(missing.stderr.text).to.include("missing required argument 'prompt'");
  });
});
