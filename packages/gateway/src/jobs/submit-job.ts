import { ConflictError, type ForemanConfig, type JobRecord, type Store, ValidationError } from "@foreman/shared";
import type { JobBatcher } from "./job-batcher.js";
import { parseJobRequest } from "./job-request.js";

export interface SubmitDeps {
  config: Pick<ForemanConfig, "webhookAllowedHosts">;
  store: Store;
  batcher: JobBatcher;
}

/**
 * POST /jobs: validates the body and commits a new async job, or answers a retried request with the job
 * its Idempotency-Key already created (200) or a 409 when that key came with a different body.
 */
export async function submitJob(
  deps: SubmitDeps,
  body: unknown,
  idempotencyKey: string | undefined,
  bodyBytes = 0,
): Promise<{ status: 200 | 202; job: JobRecord; position?: number | undefined }> {
  const key = idempotencyKey;
  if (key !== undefined && (key.length === 0 || key.length > 255)) {
    throw new ValidationError("Idempotency-Key must be 1 to 255 characters");
  }
  const parsed = parseJobRequest(body, deps.config);
  const replay = (existing: JobRecord) => {
    if (existing.requestHash !== parsed.requestHash) {
      throw new ConflictError(`Idempotency-Key ${JSON.stringify(key)} was already used with a different request body`);
    }
    return { status: 200 as const, job: existing };
  };
  if (key !== undefined) {
    const existing = deps.store.jobs.getByIdempotencyKey(key);
    if (existing) return replay(existing);
  }
  try {
    const { job, position } = await deps.batcher.create(
      { ...parsed.job, idempotencyKey: key ?? null, requestHash: key !== undefined ? parsed.requestHash : null },
      bodyBytes,
    );
    return { status: 202, job, position };
  } catch (err) {
    // Two retries of one request raced: the unique index let one in; answer the other with it.
    if (key !== undefined && (err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
      return replay(deps.store.jobs.getByIdempotencyKey(key)!);
    }
    throw err;
  }
}
