import { createHash } from "node:crypto";
import { expect } from "chai";
import { parseNdjson, postJson, simulators } from "../helpers.js";

describe("routes/management", () => {
  const start = simulators();

  it("streams pull progress like Ollama and adds the model", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/pull`, { model: "phi4-mini" });
    expect(res.headers.get("content-type")).to.equal("application/x-ndjson");
    const lines = parseNdjson(await res.text());
    expect(lines[0]).to.deep.equal({ status: "pulling manifest" });
    const download = lines.filter((l) => String(l.status).startsWith("pulling ") && l.digest);
    expect(download.length).to.be.greaterThan(4);
    const first = download[0] as { status: string; digest: string; total: number; completed?: number };
    expect(first.status).to.equal(`pulling ${first.digest.slice(7, 19)}`);
    expect(first.digest).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(first).to.not.have.property("completed"); // zero is omitted
    expect(download.some((l) => l.completed === l.total)).to.equal(true);
    expect(lines.slice(-3).map((l) => l.status)).to.deep.equal([
      "verifying sha256 digest",
      "writing manifest",
      "success",
    ]);
    const tags = (await (await fetch(`${sim.url}/api/tags`)).json()) as { models: Array<{ name: string }> };
    expect(tags.models[0]?.name).to.equal("phi4-mini:latest");
  });

  it("answers a stream:false pull with the last status only", async () => {
    const sim = await start();
    const res = await postJson(`${sim.url}/api/pull`, { name: "llama3.2", stream: false });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: "success" });
  });

  it("fails a pull the registry cannot serve", async () => {
    const sim = await start({ registry: [{ name: "phi4-mini" }] });
    const streamed = parseNdjson(await (await postJson(`${sim.url}/api/pull`, { model: "nope" })).text());
    expect(streamed).to.deep.equal([
      { status: "pulling manifest" },
      { error: "pull model manifest: file does not exist" },
    ]);
    const whole = await postJson(`${sim.url}/api/pull`, { model: "nope", stream: false });
    expect(whole.status).to.equal(500);
    expect(await whole.json()).to.deep.equal({ error: "pull model manifest: file does not exist" });
    expect((await postJson(`${sim.url}/api/pull`, { model: "phi4-mini", stream: false })).status).to.equal(200);
    expect((await postJson(`${sim.url}/api/pull`, {})).status).to.equal(400);
  });

  it("streams push progress", async () => {
    const sim = await start();
    const lines = parseNdjson(await (await postJson(`${sim.url}/api/push`, { model: "llama3.2" })).text());
    expect(lines[0]).to.deep.equal({ status: "retrieving manifest" });
    expect(lines.at(-1)).to.deep.equal({ status: "success" });
    expect((await postJson(`${sim.url}/api/push`, {})).status).to.equal(400);
  });

  it("creates from an existing model, and refuses a create with no source", async () => {
    const sim = await start();
    const lines = parseNdjson(
      await (await postJson(`${sim.url}/api/create`, { model: "mine", from: "llama3.2" })).text(),
    );
    expect(String(lines[0]?.status)).to.match(/^using existing layer sha256:/);
    expect(lines.at(-1)).to.deep.equal({ status: "success" });
    expect((await postJson(`${sim.url}/api/show`, { model: "mine" })).status).to.equal(200);
    const bad = await postJson(`${sim.url}/api/create`, { model: "mine2" });
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.deep.equal({ error: "neither 'from' or 'files' was specified" });
  });

  it("copies and deletes models, 404 for unknown ones", async () => {
    const sim = await start();
    const copy = await postJson(`${sim.url}/api/copy`, { source: "llama3.2", destination: "llama-copy" });
    expect(copy.status).to.equal(200);
    expect(await copy.text()).to.equal("");
    const missingCopy = await postJson(`${sim.url}/api/copy`, { source: "nope", destination: "x" });
    expect(missingCopy.status).to.equal(404);
    expect(await missingCopy.json()).to.deep.equal({ error: 'model "nope" not found' });
    const del = await fetch(`${sim.url}/api/delete`, {
      method: "DELETE",
      body: JSON.stringify({ model: "llama-copy" }),
    });
    expect(del.status).to.equal(200);
    const again = await fetch(`${sim.url}/api/delete`, {
      method: "DELETE",
      body: JSON.stringify({ name: "llama-copy" }),
    });
    expect(again.status).to.equal(404);
    expect(await again.json()).to.deep.equal({ error: "model 'llama-copy' not found" });
  });

  it("checks and stores blobs by digest", async () => {
    const sim = await start();
    const data = Buffer.from("GGUF fake weights");
    const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    expect((await fetch(`${sim.url}/api/blobs/${digest}`, { method: "HEAD" })).status).to.equal(404);
    expect((await fetch(`${sim.url}/api/blobs/${digest}`, { method: "POST", body: data })).status).to.equal(201);
    expect((await fetch(`${sim.url}/api/blobs/${digest}`, { method: "HEAD" })).status).to.equal(200);
    const wrong = await fetch(`${sim.url}/api/blobs/sha256:${"0".repeat(64)}`, { method: "POST", body: data });
    expect(wrong.status).to.equal(400);
    expect(((await wrong.json()) as { error: string }).error).to.match(
      /^digest mismatch, expected "sha256:0+", got "sha256:/,
    );
    const invalid = await fetch(`${sim.url}/api/blobs/nope`, { method: "POST", body: data });
    expect(await invalid.json()).to.deep.equal({ error: "invalid digest format" });
  });
});
