export {
  type ArtifactContent,
  type ChatOptions,
  type ChatRunResult,
  type ChatStreamOptions,
  ForemanClient,
  type ForemanClientOptions,
  type GenerateOptions,
  type GenerateRunResult,
  type GenerateStreamOptions,
  type GetOptions,
  type JobListFilter,
  type JobPage,
  JobPages,
  type ListOptions,
  MAX_WAIT_SECONDS,
  type RequestOptions,
  type RunOptions,
  type StreamOptions,
  type SubmitOptions,
  type WaitOptions,
} from "./client.js";
export {
  ForemanClientError,
  ForemanHttpError,
  ForemanNetworkError,
  ForemanProtocolError,
  ForemanTimeoutError,
  JobFailedError,
  JobRestartedError,
  JobStreamError,
  JobTimeoutError,
} from "./errors.js";
export { parseNdjson } from "./ndjson.js";
export { DEFAULT_RETRY_POLICY, type RetryOptions } from "./retry.js";
export * from "./types.js";
