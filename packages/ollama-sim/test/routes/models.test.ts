import { expect } from "chai";
import { formatGoTime, MAX_GO_DURATION_MS } from "../../src/go-time.js";
import { ManualClock } from "../../src/index.js";
import { postJson, simulators } from "../helpers.js";

describe("routes/models", () => {
  const start = simulators();

  it("lists the library newest first with Ollama's fields", async () => {
    const sim = await start();
    const res = await fetch(`${sim.url}/api/tags`);
    expect(res.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    const { models } = (await res.json()) as { models: Array<Record<string, unknown>> };
    expect(models.map((m) => m.name)).to.deep.equal([
      "llama3.2:latest",
      "qwen3:8b",
      "gemma3:4b",
      "nomic-embed-text:latest",
    ]);
    expect(models[0]).to.have.keys("name", "model", "modified_at", "size", "digest", "details");
    expect(models[0]?.digest).to.match(/^[0-9a-f]{64}$/);
    expect(models[3]?.details).to.deep.equal({
      parent_model: "",
      format: "gguf",
      family: "nomic-bert",
      families: ["nomic-bert"],
      parameter_size: "137M",
      quantization_level: "F16",
    });
    const head = await fetch(`${sim.url}/api/tags`, { method: "HEAD" });
    expect(head.status).to.equal(200);
  });

  it("shows loaded models with expires_at, size_vram and context_length", async () => {
    const clock = new ManualClock(Date.UTC(2025, 5, 1, 12, 0, 0));
    const sim = await start({ clock });
    await postJson(`${sim.url}/api/generate`, { model: "llama3.2", keep_alive: "10m" });
    await postJson(`${sim.url}/api/embed`, { model: "nomic-embed-text", input: [], keep_alive: -1 });
    const { models } = (await (await fetch(`${sim.url}/api/ps`)).json()) as { models: Array<Record<string, unknown>> };
    expect(models.map((m) => m.name)).to.deep.equal(["nomic-embed-text:latest", "llama3.2:latest"]);
    expect(models[1]).to.have.keys(
      "name",
      "model",
      "size",
      "digest",
      "details",
      "expires_at",
      "size_vram",
      "context_length",
    );
    expect(models[1]?.expires_at).to.equal(formatGoTime(clock.now() + 600_000, false));
    expect(models[0]?.expires_at).to.equal(formatGoTime(clock.now() + MAX_GO_DURATION_MS, false));
    expect(models[1]).to.include({ size_vram: 2_019_393_189, context_length: 4096 });
  });

  it("shows a model's details, capabilities and model_info", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/show`, { model: "qwen3:8b" });
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.capabilities).to.deep.equal(["completion", "tools", "thinking"]);
    expect(body.model_info).to.include({ "general.architecture": "qwen3", "qwen3.context_length": 4096 });
    expect(body).to.include.keys("details", "modelfile", "modified_at");
    const legacy = await postJson(`${sim.url}/api/show`, { name: "qwen3:8b" });
    expect(legacy.status).to.equal(200);
  });

  it("answers show errors as ShowHandler does", async () => {
    const sim = await start();
    const missing = await postJson(`${sim.url}/api/show`, { model: "nope" });
    expect(missing.status).to.equal(404);
    expect(await missing.json()).to.deep.equal({ error: "model 'nope:latest' not found" });
    const none = await postJson(`${sim.url}/api/show`, {});
    expect(none.status).to.equal(400);
    expect(await none.json()).to.deep.equal({ error: "model is required" });
  });

  it("answers the configured version on GET and HEAD", async () => {
    const sim = await start({ version: "0.9.9" });
    expect(await (await fetch(`${sim.url}/api/version`)).json()).to.deep.equal({ version: "0.9.9" });
    expect((await fetch(`${sim.url}/api/version`, { method: "HEAD" })).status).to.equal(200);
  });
});
