import { expect } from "chai";
import { type Simulator, startSimulator } from "../../../ollama-sim/src/index.js";
import { runCli } from "../../src/cli.js";
import { memoryIo } from "../memory-io.js";

const TOKEN = "ollama-token-0123456789";
const EMBED = "nomic-embed-text";

describe("foreman models", function () {
  this.timeout(20_000);
  let sim: Simulator;
  const env = (extra: Record<string, string> = {}) => ({
    FOREMAN_OLLAMA_URL: sim.url,
    FOREMAN_OLLAMA_TOKEN: TOKEN,
    FOREMAN_EMBED_MODEL: EMBED,
    ...extra,
  });

  afterEach(async () => {
    await sim?.close();
  });

  describe("list", () => {
    it("lists the target's models with what is resident, pinned and the embedder", async () => {
      sim = await startSimulator({ token: TOKEN, loadMs: 5 });
      await runCli(["models", "check"], memoryIo(env()));
      const io = memoryIo(env());
      expect(await runCli(["models"], io)).to.equal(0);
      expect(io.stdout.text).to.match(/^NAME +SIZE +PARAMS +QUANT +RESIDENT$/m);
      expect(io.stdout.text).to.match(/^nomic-embed-text:latest +274 MB +137M +F16 +pinned +embedder$/m);
      expect(io.stdout.text).to.match(/^gemma3:4b +3\.3 GB +4\.3B +Q4_K_M$/m);
      const json = memoryIo(env());
      expect(await runCli(["models", "--json"], json)).to.equal(0);
      const report = JSON.parse(json.stdout.text);
      expect(report.embedder).to.equal(EMBED);
      expect(report.models.find((m: { name: string }) => m.name === "nomic-embed-text:latest")).to.include({
        resident: true,
        pinned: true,
        embedder: true,
      });
      expect(io.stdout.text + io.stderr.text + json.stdout.text).to.not.include(TOKEN);
    });
  });

  describe("check", () => {
    it("passes on two slots, naming the worker models it switched between, and unloads what it loaded", async () => {
      sim = await startSimulator({ token: TOKEN, loadMs: 5, maxLoadedModels: 2 });
      const io = memoryIo(env());
      expect(await runCli(["models", "check", "gemma3:4b", "qwen3:8b", "--json"], io)).to.equal(0);
      const report = JSON.parse(io.stdout.text);
      expect(report).to.include({ ok: true, embedder: EMBED, advice: null });
      expect(report.worker_models).to.deep.equal(["gemma3:4b", "qwen3:8b"]);
      expect(report.steps.map((s: { step: string }) => s.step)).to.deep.equal([
        "load-embedder",
        "load-worker",
        "both-resident",
        "unload-worker",
        "switch-worker",
        "embedder-kept",
      ]);
      // Left as the worker expects: only the pinned embedder.
      expect(sim.loaded().map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest"]);
      expect(sim.loaded()[0]?.keepAliveMs).to.equal(null);
    });

    it("fails on one slot (exit 1) and says what to change on the Ollama host", async () => {
      sim = await startSimulator({ token: TOKEN, loadMs: 5, maxLoadedModels: 1 });
      const io = memoryIo(env());
      expect(await runCli(["models", "check"], io)).to.equal(1);
      expect(io.stdout.text).to.include("✗ loading llama3.2:latest evicted the embedder");
      expect(io.stdout.text)
        .to.include("OLLAMA_MAX_LOADED_MODELS=2")
        .and.include("launchctl setenv OLLAMA_MAX_LOADED_MODELS 2");
      expect(io.stdout.text).to.include("systemctl edit ollama.service").and.include("OLLAMA_HOST=0.0.0.0:11434");
    });

    it("a model missing on the target fails with the pull to run; too many names or no embedder is usage", async () => {
      sim = await startSimulator({ token: TOKEN, loadMs: 5 });
      const missing = memoryIo(env());
      expect(await runCli(["models", "check", "mistral"], missing)).to.equal(1);
      expect(missing.stdout.text).to.include("mistral is not on the target: foreman models pull mistral");
      expect(missing.stdout.text).to.not.include("OLLAMA_MAX_LOADED_MODELS");
      const noEmbedder = memoryIo(env({ FOREMAN_EMBED_MODEL: "" }));
      expect(await runCli(["models", "check"], noEmbedder)).to.equal(2);
      expect(noEmbedder.stderr.text).to.include("set FOREMAN_EMBED_MODEL or pass --embed");
      const many = memoryIo(env());
      expect(await runCli(["models", "check", "a", "b", "c"], many)).to.equal(2);
    });
  });

  describe("pull", () => {
    it("draws a bar per model on a terminal and prints one result line per model on stdout", async () => {
      sim = await startSimulator({ token: TOKEN, pullMs: 200 });
      const io = memoryIo(env(), { tty: true });
      expect(await runCli(["models", "pull", "qwen3:8b"], io)).to.equal(0);
      expect(io.stdout.text).to.match(/^qwen3:8b: pulled \(5\.2 GB, .+\)\nnomic-embed-text: pulled \(274 MB, .+\)\n$/);
      expect(io.stderr.text).to.include("\r\x1b[Kqwen3:8b          [");
      expect(io.stderr.text).to.match(/\] +\d+% +[\d.]+ [kMG]?B\/[\d.]+ [kMG]?B +/);
      expect(io.stderr.text.endsWith("\r\x1b[K")).to.equal(true);
    });

    it("a model the registry does not have fails that model (exit 1) and the others still pull", async () => {
      sim = await startSimulator({
        token: TOKEN,
        pullMs: 0,
        registry: [{ name: "qwen3:8b" }, { name: EMBED, embeddingSize: 768 }],
      });
      const io = memoryIo(env());
      expect(await runCli(["models", "pull", "no-such-model", "qwen3:8b", "--json"], io)).to.equal(1);
      const report = JSON.parse(io.stdout.text);
      expect(report.models.map((m: { model: string; ok: boolean }) => [m.model, m.ok])).to.deep.equal([
        ["no-such-model", false],
        ["qwen3:8b", true],
        [EMBED, true],
      ]);
      expect(io.stderr.text).to.include("could not pull no-such-model: pull model manifest: file does not exist");
    });

    it("nothing to pull is a usage error", async () => {
      sim = await startSimulator({ token: TOKEN });
      const io = memoryIo(env({ FOREMAN_EMBED_MODEL: "" }));
      expect(await runCli(["models", "pull"], io)).to.equal(2);
    });
  });
});
