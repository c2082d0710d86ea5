export {
  type ArtifactContent,
  type ChatOptions,
  type ChatRunResult,
  ForemanClient,
  type ForemanClientOptions,
  type GenerateOptions,
  type GenerateRunResult,
  type GetOptions,
  type JobListFilter,
  type JobPage,
  type ListOptions,
  MAX_WAIT_SECONDS,
  type RequestOptions,
  type RunOptions,
  type SubmitOptions,
  type WaitOptions,
} from "./client.js";
export {
  ForemanClientError,
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  ForemanRequestError,
  ForemanTimeoutError,
  JobFailedError,
  JobStreamError,
  JobTimeoutError,
} from "./errors.js";
export { parseNdjson } from "./ndjson.js";
export { DEFAULT_RETRY_POLICY, type RetryOptions } from "./retry.js";
export * from "./types.js";
