import { expect } from "chai";
import { Ollama } from "ollama";
import { DEFAULT_MODELS, type Simulator, startSimulator } from "../../packages/ollama-sim/src/index.js";
import { type Foreman, foreman, stopAll } from "./harness.js";

const EMBEDDER = "nomic-embed-text:latest";
const WORKER_MODEL = "llama3.2:latest";
/** A second embedding model: loading it on a two-slot target must not cost the embedder its slot. */
const THIRD = "mxbai-embed-large:latest";

interface JobView {
  id: string;
  kind: string;
  api: string;
  model: string;
  state: string;
  working_at: string | null;
  loading_at: string | null;
  ended_at: string | null;
}

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/**
 * Starts a chat long enough (about 2 s of tokens) to hold the worker while a test queues an embed behind it,
 * and returns once its first chunk has arrived, so the chat is surely running.
 */
async function startLongChat(base: string) {
  const chat = await post(base, "/api/chat", {
    model: WORKER_MODEL,
    messages: [{ role: "user", content: "keep the worker busy" }],
    options: { num_predict: 400 },
  });
  expect(chat.status).to.equal(200);
  const reader = chat.body!.getReader();
  await reader.read();
  return { id: chat.headers.get("x-foreman-job-id")!, reader };
}

/** An /api/embed answer without its durations, which differ between any two calls. */
function withoutDurations(text: string): Record<string, unknown> {
  const { total_duration: _t, load_duration: _l, ...rest } = JSON.parse(text) as Record<string, unknown>;
  return rest;
}

describe("e2e: embeddings for another model than the embedder run as jobs", function () {
  this.timeout(60_000);
  let sim: Simulator;
  let f: Foreman;

  const job = async (id: string) => (await (await fetch(`${f.url}/jobs/${id}`)).json()) as JobView;
  const jobCount = async () => {
    const page = (await (await fetch(`${f.url}/jobs?limit=100`)).json()) as { jobs: JobView[] };
    return page.jobs.length;
  };
  const embedderEvictions = () => sim.stats().evictions.byModel[EMBEDDER] ?? 0;
  /** Models the target pushed out to make room; foreman unloads its worker model itself, so none ever is. */
  const evictions = () => sim.stats().evictions.total;

  before(async () => {
    // Two slots, as foreman asks of its target: the pinned embedder and one rotating worker model.
    sim = await startSimulator({
      loadMs: 30,
      tokensPerSecond: 200,
      maxLoadedModels: 2,
      models: [...DEFAULT_MODELS, { name: THIRD, embeddingSize: 1024, sizeBytes: 669_615_493 }],
    });
    f = await foreman({ ollamaUrl: sim.url, env: { FOREMAN_EMBED_MODEL: EMBEDDER } });
    await f.startGateway();
    f.startWorker();
    await f.worker!.waitForLog("embedder pinned");
    // The worker model is loaded beside the embedder: both slots are taken.
    const chat = await post(f.url, "/api/chat", {
      model: WORKER_MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: false,
      options: { num_predict: 3 },
    });
    expect(chat.status, await chat.clone().text()).to.equal(200);
    expect(sim.loaded().map((m) => m.name)).to.have.members([EMBEDDER, WORKER_MODEL]);
  });
  after(async () => {
    await stopAll();
    await sim.close();
  });

  it("answers /api/embed for a third model as the target does, from a job, and the embedder stays", async () => {
    const body = { model: THIRD, input: ["alpha", "beta"] };
    const res = await post(f.url, "/api/embed", body);
    const text = await res.text();
    expect(res.status, text).to.equal(200);
    const id = res.headers.get("x-foreman-job-id");
    expect(id, "a job id header").to.be.a("string");

    expect(evictions(), JSON.stringify(sim.stats().evictions)).to.equal(0);
    expect(sim.loaded().map((m) => m.name)).to.have.members([EMBEDDER, THIRD]);
    // Asked directly now (the third model is loaded, so this evicts nothing), the target says the same.
    const direct = await post(sim.url, "/api/embed", body);
    expect(res.headers.get("content-type")).to.equal(direct.headers.get("content-type"));
    expect(withoutDurations(text)).to.deep.equal(withoutDurations(await direct.text()));

    const view = await job(id!);
    expect(view).to.include({ kind: "embed", api: "ollama", model: THIRD, state: "done" });
    const listed = (await (await fetch(`${f.url}/jobs?model=${encodeURIComponent(THIRD)}`)).json()) as {
      jobs: JobView[];
    };
    expect(listed.jobs.map((j) => j.id)).to.include(id);
    const scrape = await (await fetch(`${f.url}/metrics`)).text();
    expect(scrape).to.match(new RegExp(`foreman_jobs_finished_total\\{model="${THIRD}",state="done"\\} [1-9]`));
    expect(scrape).to.match(new RegExp(`foreman_model_loads_total\\{model="${THIRD}"\\} [1-9]`));
  });

  it("answers the legacy /api/embeddings and the OpenAI /v1/embeddings for a third model from jobs, as the target does", async () => {
    for (const [path, body, kind, api] of [
      ["/api/embeddings", { model: THIRD, prompt: "gamma" }, "embeddings", "ollama"],
      ["/v1/embeddings", { model: THIRD, input: ["gamma", "delta"] }, "embed", "openai"],
    ] as const) {
      const res = await post(f.url, path, body);
      const text = await res.text();
      expect(res.status, text).to.equal(200);
      const id = res.headers.get("x-foreman-job-id");
      expect(id, path).to.be.a("string");
      expect(await job(id!), path).to.include({ kind, api, model: THIRD, state: "done" });
      const direct = await post(sim.url, path, body);
      expect(res.headers.get("content-type"), path).to.equal(direct.headers.get("content-type"));
      // Byte for byte, the newline Ollama's OpenAI layer ends its body with (Go's json.Encoder) included.
      expect(text, path).to.equal(await direct.text());
    }
    expect(evictions()).to.equal(0);
  });

  it("passes the embedder's own requests straight through: no job", async () => {
    const before = await jobCount();
    for (const path of ["/api/embed", "/v1/embeddings"]) {
      const res = await post(f.url, path, { model: EMBEDDER, input: "to the embedder" });
      expect(res.status, await res.text()).to.equal(200);
      expect(res.headers.get("x-foreman-job-id"), path).to.equal(null);
    }
    const legacy = await post(f.url, "/api/embeddings", { model: "nomic-embed-text", prompt: "untagged name" });
    expect(legacy.status, await legacy.text()).to.equal(200);
    expect(legacy.headers.get("x-foreman-job-id")).to.equal(null);
    expect(await jobCount()).to.equal(before);
  });

  it("holds a third-model embed queued behind a running chat until the chat has ended", async () => {
    const { id: chatId, reader } = await startLongChat(f.url);

    const from = f.gateway!.lines.length;
    const embedding = post(f.url, "/api/embed", { model: THIRD, input: "while the chat runs" });
    const queuedLine = await f.gateway!.waitForLine(
      (line) => line.includes('"job queued"') && line.includes(`"model":"${THIRD}"`),
      10_000,
      from,
    );
    const queued = { id: (JSON.parse(queuedLine) as { job_id: string }).job_id };
    expect((await job(chatId)).state, "the chat still runs when the embed is queued").to.equal("working");
    const status = (await (await fetch(`${f.url}/status`)).json()) as {
      queue: { by_model: Array<{ model: string; queued: number }> };
    };
    expect(status.queue.by_model.find((m) => m.model === THIRD)?.queued, "status shows it queued").to.equal(1);

    while (!(await reader.read()).done) {
      // Read the chat to its end.
    }
    const res = await embedding;
    expect(res.status, await res.text()).to.equal(200);
    expect(res.headers.get("x-foreman-job-id")).to.equal(queued.id);
    const [chatView, embedView] = [await job(chatId), await job(queued.id)];
    expect(chatView.state).to.equal("done");
    expect(embedView.state).to.equal("done");
    expect(Date.parse(embedView.loading_at!)).to.be.at.least(Date.parse(chatView.ended_at!));
    // Straight to the target, this embed would have found the worker model busy and evicted the idle embedder.
    expect(embedderEvictions()).to.equal(0);
    expect(evictions()).to.equal(0);
  });

  it("cancels a queued embed job whose caller goes away", async () => {
    const { reader } = await startLongChat(f.url);
    const from = f.gateway!.lines.length;
    const caller = new AbortController();
    const embedding = fetch(`${f.url}/api/embed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: THIRD, input: "never mind" }),
      signal: caller.signal,
    }).catch((err: Error) => err);
    const queuedLine = await f.gateway!.waitForLine(
      (line) => line.includes('"job queued"') && line.includes(`"model":"${THIRD}"`),
      10_000,
      from,
    );
    caller.abort();
    expect(await embedding).to.be.instanceOf(Error);
    const id = (JSON.parse(queuedLine) as { job_id: string }).job_id;
    expect((await f.endedJob(id)).state).to.equal("canceled");
    while (!(await reader.read()).done) {
      // Let the chat finish.
    }
  });

  it("with the early answer on, sends the job id and queue position at once, then the target's body", async () => {
    // A second gateway on the same database, with the early answer on.
    const early = await foreman({
      ollamaUrl: sim.url,
      dataDir: f.dataDir,
      env: { FOREMAN_EMBED_MODEL: EMBEDDER, FOREMAN_SYNC_KEEPALIVE_MS: "50" },
    });
    await early.startGateway();
    // A running chat keeps the worker busy, so the embed is still queued when its position is counted.
    const { reader } = await startLongChat(f.url);
    const body = { model: THIRD, input: "early" };
    // Its headers, position included, are sent once it is queued; the chat still holds the worker then.
    const res = await post(early.url, "/api/embed", body);
    expect(res.headers.get("x-foreman-queue-position")).to.match(/^\d+$/);
    while (!(await reader.read()).done) {
      // Read the chat to its end, so the embed can run.
    }
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("application/json; charset=utf-8");
    expect(res.headers.get("x-foreman-job-id")).to.be.a("string");
    const text = await res.text();
    // Whitespace may precede the object while the job waits; the JSON is the target's.
    const direct = await post(sim.url, "/api/embed", body);
    expect(withoutDurations(text)).to.deep.equal(withoutDurations(await direct.text()));
    expect(evictions()).to.equal(0);
  });

  it("works unchanged for ollama-js's embed", async () => {
    const through = await new Ollama({ host: f.url }).embed({ model: THIRD, input: ["epsilon", "zeta"] });
    const direct = await new Ollama({ host: sim.url }).embed({ model: THIRD, input: ["epsilon", "zeta"] });
    expect(through.model).to.equal(direct.model);
    expect(through.embeddings).to.deep.equal(direct.embeddings);
    expect(evictions()).to.equal(0);
  });

  it("refuses a body whose model cannot be told, and answers an unknown model with the target's own 404", async () => {
    const bad = await post(f.url, "/api/embed", "{not json");
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: string }).error).to.match(/^invalid JSON body: /);
    const noModel = await post(f.url, "/api/embed", { input: "x" });
    expect(noModel.status).to.equal(400);
    expect(await noModel.json()).to.deep.equal({ error: "model is required" });

    const body = { model: "no-such-embedder", input: "x" };
    const res = await post(f.url, "/api/embed", body);
    const direct = await post(sim.url, "/api/embed", body);
    expect(res.status).to.equal(404);
    expect(res.headers.get("x-foreman-job-id")).to.be.a("string");
    expect(res.headers.get("content-type")).to.equal(direct.headers.get("content-type"));
    expect(await res.text()).to.equal(await direct.text());
  });
});
