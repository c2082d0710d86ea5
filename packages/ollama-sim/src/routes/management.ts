import { createHash } from "node:crypto";
import { readBody, readJsonBody, sendEmpty, sendError } from "../http-io.js";
import type { SimModel } from "../interfaces.js";
import { type CatalogModel, lookupName } from "../model-catalog.js";
import { displayShortest, isValidModelName, modelKey, parseModelName } from "../model-name.js";
import { type ProgressItem, playProgress } from "../progress-stream.js";
import type { RequestScope, RouteContext } from "../route-context.js";
import { takeDieMidStream } from "./generate.js";

/** Download or upload progress for each layer: 0 %, 25 %, ..., 100 %. */
function transferLines(verb: "pulling" | "pushing", model: CatalogModel): ProgressItem[] {
  const lines: ProgressItem[] = [];
  for (const layer of model.layers) {
    // "pulling 8eeb52dfb3bb": the 12 hex digits after "sha256:" (download.go, b.Digest[7:19]).
    const status = `${verb} ${layer.digest.slice(7, 19)}`;
    for (const share of [0, 0.25, 0.5, 0.75, 1]) {
      lines.push({ status, digest: layer.digest, total: layer.size, completed: Math.round(layer.size * share) });
    }
  }
  return lines;
}

function requestedName(body: Record<string, unknown>): string {
  if (typeof body.model === "string" && body.model !== "") return body.model;
  return typeof body.name === "string" ? body.name : "";
}

/** A model /api/pull can fetch, or undefined when the registry has no such manifest. */
function pullable(name: string, ctx: RouteContext): SimModel | undefined {
  const key = modelKey(parseModelName(name));
  const display = displayShortest(parseModelName(name));
  if (ctx.config.registry) {
    const found = ctx.config.registry.find((m) => modelKey(parseModelName(m.name)) === key);
    return found ? { ...found, name: display } : undefined;
  }
  const existing = ctx.catalog.get(key);
  if (existing) return { ...existing.source };
  return /embed/i.test(name) ? { name: display, embeddingSize: 768 } : { name: display };
}

/** POST /api/pull */
export async function pullRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "api.PullRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  const name = requestedName(parsed.body);
  scope.call.entry.model = name;
  const lookup = lookupName(name);
  if (!lookup.ok) return sendError(scope.res, 400, "invalid model name");
  const stream = parsed.body.stream !== false;
  const source = pullable(name, ctx);
  let items: ProgressItem[];
  let onSuccess: (() => void) | undefined;
  if (!source) {
    items = [{ status: "pulling manifest" }, { error: "pull model manifest: file does not exist" }];
  } else {
    // The model joins the library only once "success" is out, as the manifest is written last.
    const preview = ctx.catalog.get(lookup.key) ?? ctx.catalog.resolve(source);
    items = [
      { status: "pulling manifest" },
      ...transferLines("pulling", preview),
      { status: "verifying sha256 digest" },
      { status: "writing manifest" },
      { status: "success" },
    ];
    onSuccess = () => ctx.catalog.add(source);
  }
  await playProgress(scope, items, {
    stream,
    totalMs: ctx.config.pullMs,
    dieAfterChunks: stream ? takeDieMidStream(scope, ctx) : undefined,
    ...(onSuccess ? { onSuccess } : {}),
  });
}

/** POST /api/push */
export async function pushRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "api.PushRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  const name = requestedName(parsed.body);
  scope.call.entry.model = name;
  if (name === "") return sendError(scope.res, 400, "model is required");
  const stream = parsed.body.stream !== false;
  const entry = ctx.catalog.find(name);
  const parsedName = parseModelName(name);
  const items: ProgressItem[] = entry
    ? [
        { status: "retrieving manifest" },
        ...transferLines("pushing", entry),
        { status: "pushing manifest" },
        { status: "success" },
      ]
    : [
        { status: "retrieving manifest" },
        { status: "couldn't retrieve manifest" },
        {
          error:
            `open /root/.ollama/models/manifests/${parsedName.host}/${parsedName.namespace}/` +
            `${parsedName.model}/${parsedName.tag}: no such file or directory`,
        },
      ];
  await playProgress(scope, items, {
    stream,
    totalMs: ctx.config.pullMs,
    dieAfterChunks: stream ? takeDieMidStream(scope, ctx) : undefined,
  });
}

/** POST /api/create: from an existing model, or from uploaded files. */
export async function createRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "api.CreateRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  const body = parsed.body;
  const name = requestedName(body);
  scope.call.entry.model = name;
  const target = parseModelName(name);
  if (name === "" || !isValidModelName(target)) return sendError(scope.res, 400, "invalid model name");
  const stream = body.stream !== false;
  const display = displayShortest(target);
  let items: ProgressItem[];
  let created: SimModel | undefined;
  if (typeof body.from === "string" && body.from !== "") {
    const base = ctx.catalog.find(body.from);
    if (!base) {
      items = [{ status: "pulling manifest" }, { error: "pull model manifest: file does not exist" }];
    } else {
      created = { ...base.source, name: display };
      items = [
        ...base.layers.map((layer) => ({ status: `using existing layer ${layer.digest}` })),
        { status: "writing manifest" },
        { status: "success" },
      ];
    }
  } else if (body.files && typeof body.files === "object") {
    created = { name: display };
    items = [{ status: "parsing GGUF" }, { status: "writing manifest" }, { status: "success" }];
  } else {
    items = [{ error: "neither 'from' or 'files' was specified", httpStatus: 400 }];
  }
  const model = created;
  await playProgress(scope, items, {
    stream,
    totalMs: ctx.config.pullMs,
    dieAfterChunks: stream ? takeDieMidStream(scope, ctx) : undefined,
    ...(model ? { onSuccess: () => ctx.catalog.add(model) } : {}),
  });
}

/** POST /api/copy: 200 with an empty body. */
export async function copyRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "api.CopyRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  const source = typeof parsed.body.source === "string" ? parsed.body.source : "";
  const destination = typeof parsed.body.destination === "string" ? parsed.body.destination : "";
  scope.call.entry.model = source;
  const src = parseModelName(source);
  if (!isValidModelName(src)) return sendError(scope.res, 400, `source ${JSON.stringify(source)} is invalid`);
  const dst = parseModelName(destination);
  if (!isValidModelName(dst)) {
    return sendError(scope.res, 400, `destination ${JSON.stringify(destination)} is invalid`);
  }
  const entry = ctx.catalog.get(modelKey(src));
  if (!entry) return sendError(scope.res, 404, `model ${JSON.stringify(source)} not found`);
  ctx.catalog.add({ ...entry.source, name: displayShortest(dst) });
  sendEmpty(scope.res);
}

/** DELETE /api/delete: 200 with an empty body, 404 for an unknown model. */
export async function deleteRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const parsed = await readJsonBody(scope.req, "api.DeleteRequest");
  if (!parsed.ok) return sendError(scope.res, 400, parsed.message);
  const name = requestedName(parsed.body);
  scope.call.entry.model = name;
  if (name.trim() === "") return sendError(scope.res, 400, "model is required");
  const lookup = lookupName(name);
  if (!lookup.ok) return sendError(scope.res, 400, `name ${JSON.stringify(name)} is invalid`);
  // A loaded model stays loaded: DeleteHandler does not touch the scheduler.
  if (!ctx.catalog.remove(lookup.key)) return sendError(scope.res, 404, `model '${name}' not found`);
  sendEmpty(scope.res);
}

const DIGEST = /^sha256[:-][0-9a-fA-F]{64}$/;

/** HEAD /api/blobs/:digest */
export function headBlobRoute(scope: RequestScope, ctx: RouteContext) {
  const digest = scope.params.digest ?? "";
  if (!DIGEST.test(digest)) return sendError(scope.res, 400, "invalid digest format");
  if (!ctx.catalog.blobExists(digest)) return sendError(scope.res, 404, `blob ${JSON.stringify(digest)} not found`);
  sendEmpty(scope.res);
}

/** POST /api/blobs/:digest: 201 when stored, 200 when already there. */
export async function createBlobRoute(scope: RequestScope, ctx: RouteContext): Promise<void> {
  const digest = scope.params.digest ?? "";
  if (!DIGEST.test(digest)) return sendError(scope.res, 400, "invalid digest format");
  if (ctx.catalog.blobExists(digest)) return sendEmpty(scope.res, 200);
  const body = await readBody(scope.req);
  const actual = `sha256:${createHash("sha256").update(body).digest("hex")}`;
  if (actual !== digest.replace("-", ":").toLowerCase()) {
    return sendError(
      scope.res,
      400,
      `digest mismatch, expected ${JSON.stringify(digest)}, got ${JSON.stringify(actual)}`,
    );
  }
  ctx.catalog.addBlob(actual);
  sendEmpty(scope.res, 201);
}
