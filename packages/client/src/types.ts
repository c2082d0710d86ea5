/**
 * Wire types of foreman's `/jobs` API and its webhooks, with the field names exactly as they travel.
 *
 * The Ollama shapes below (messages, tools, options, chunks, metrics) repeat the names of
 * packages/shared/src/ollama-types.ts, which is their source, and `Job` is the server's JobView. They are
 * copied rather than imported because this package has no dependencies: `@foreman/shared` brings SQLite and
 * winston along, which a client has no use for, and a type-only import would leave the published
 * declarations pointing at a package the user does not have. test/types.test.ts holds each copy to its
 * source at compile time, so `pnpm typecheck` fails when they drift apart.
 */

// ---------------------------------------------------------------------------------------------
// Ollama shapes used inside jobs
// ---------------------------------------------------------------------------------------------

/** A Go duration string ("5m", "1h30m"), a number of seconds, `0` to unload, negative to keep loaded. */
export type KeepAlive = string | number;

export type ThinkValue = boolean | "high" | "medium" | "low" | "max";

/** `"json"` for JSON mode, or a JSON schema object for structured outputs. */
export type Format = "json" | Record<string, unknown>;

/** Model options; Ollama accepts any key, so the common ones are typed and the rest pass through. */
export interface Options {
  [key: string]: unknown;
  num_ctx?: number;
  num_predict?: number;
  seed?: number;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  repeat_penalty?: number;
  stop?: string[];
}

export interface ToolCall {
  id?: string;
  function: { index?: number; name: string; arguments: Record<string, unknown> };
}

export interface Message {
  role: "system" | "user" | "assistant" | "tool" | (string & {});
  content: string;
  thinking?: string;
  /** Base64-encoded images. */
  images?: string[];
  tool_calls?: ToolCall[];
  tool_name?: string;
  tool_call_id?: string;
}

/** A JSON Schema property of a tool's parameters: the keys Ollama reads are typed, others pass through. */
export interface ToolProperty {
  [key: string]: unknown;
  anyOf?: ToolProperty[];
  type?: string | string[];
  items?: unknown;
  description?: string;
  enum?: unknown[];
  properties?: Record<string, ToolProperty>;
  required?: string[];
}

export interface Tool {
  type: "function" | (string & {});
  function: {
    name: string;
    description?: string;
    parameters: {
      type: string;
      required?: string[];
      properties?: Record<string, ToolProperty>;
      [key: string]: unknown;
    };
  };
}

/** Ollama's timing and token counts: durations in nanoseconds. */
export interface Metrics {
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
  prompt_eval_duration?: number;
  eval_count?: number;
  eval_duration?: number;
}

/** One chunk of a chat job's stream, or a chat job's final answer (`result`). */
export interface ChatResponse extends Metrics {
  model: string;
  created_at: string;
  message: Message;
  done: boolean;
  done_reason?: string;
}

/** One chunk of a generate job's stream, or a generate job's final answer (`result`). */
export interface GenerateResponse extends Metrics {
  model: string;
  created_at: string;
  response: string;
  thinking?: string;
  done: boolean;
  done_reason?: string;
  context?: number[];
  tool_calls?: ToolCall[];
}

/** A line of `GET /jobs/<id>/stream`: the Ollama chunk objects of the job, as the target sent them. */
export type JobChunk = ChatResponse | GenerateResponse;

/** The final Ollama answer of a job. */
export type JobResult = ChatResponse | GenerateResponse;

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

export const JOB_STATES = ["queued", "loading", "working", "done", "failed", "canceled"] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_JOB_STATES: readonly JobState[] = ["done", "failed", "canceled"];

/** A job in a terminal state will not change again; `wait` stops there. */
export function isTerminalState(state: JobState): boolean {
  return TERMINAL_JOB_STATES.includes(state);
}

export type JobKind = "chat" | "generate" | "embed" | "embeddings";

export type JobEventType = `job.${JobState}`;

export interface WebhookRequest {
  /** http or https. */
  url: string;
  /** Standard Webhooks signing secret, `whsec_…`; the server's default secret applies when absent. */
  secret?: string;
  /** Only these events are delivered; all of them when absent. */
  events?: JobEventType[];
}

interface JobRequestFields {
  model: string;
  system?: string;
  options?: Options;
  format?: Format;
  tools?: Tool[];
  think?: ThinkValue;
  keep_alive?: KeepAlive;
  images?: string[];
  /** A small JSON object, echoed back on the job. */
  metadata?: Record<string, unknown>;
  webhook?: WebhookRequest;
}

/** `POST /jobs` body of a chat job. */
export interface ChatJobRequest extends JobRequestFields {
  messages: Message[];
  prompt?: never;
}

/** `POST /jobs` body of a generate job. */
export interface GenerateJobRequest extends JobRequestFields {
  prompt: string;
  suffix?: string;
  messages?: never;
}

/** `POST /jobs` body: exactly one of `messages` (chat) or `prompt` (generate). */
export type JobRequest = ChatJobRequest | GenerateJobRequest;

export interface JobArtifact {
  name: string;
  content_type: string;
  size: number;
  url: string;
}

export interface WebhookDelivery {
  event_id: string;
  type: JobEventType | (string & {});
  status: "pending" | "delivered" | "failed";
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
}

export interface JobWebhook {
  url: string;
  events: JobEventType[] | null;
  /** The job's deliveries, oldest first (absent from the job inside a webhook event). */
  deliveries?: WebhookDelivery[];
}

/** The job object of every `/jobs` response. Timestamps are ISO 8601 strings. */
export interface Job {
  /** A ULID. */
  id: string;
  kind: JobKind;
  /** Which API made the job: `ollama` (`/jobs`, `/api/*`) or `openai` (`/v1/*`). Listings show both. */
  api: "ollama" | "openai";
  /** `async` for `/jobs`, `sync` for a job made by a synchronous Ollama or OpenAI call. */
  mode: "sync" | "async";
  model: string;
  state: JobState;
  created_at: string;
  queued_at: string | null;
  loading_at: string | null;
  working_at: string | null;
  ended_at: string | null;
  attempts: number;
  max_attempts: number;
  error: string | null;
  metadata: Record<string, unknown> | null;
  /** 1-based place in the queue, only while queued (the 202 of a submit leaves it out; `get` has it). */
  position?: number;
  /** The job was asked to stop and the worker is stopping it. */
  cancel_requested?: boolean;
  metrics: Metrics | null;
  /**
   * The final Ollama answer, inline when small (see `result_url` otherwise). A job made through the
   * OpenAI-compatible routes (`api: "openai"`) holds that API's answer instead.
   */
  result: JobResult | null;
  /** Where the result is when it was too large to inline. */
  result_url?: string;
  artifacts: JobArtifact[];
  webhook: JobWebhook | null;
}

/** `GET /jobs` response body. */
export interface JobListResponse {
  /** Newest first. */
  jobs: Job[];
  next_cursor: string | null;
}

// ---------------------------------------------------------------------------------------------
// Embeddings (Ollama's own route, which the gateway serves past the queue)
// ---------------------------------------------------------------------------------------------

/** `POST /api/embed` body, as Ollama takes it. */
export interface EmbedRequest {
  model: string;
  /** One text or several; one vector each, in order. */
  input: string | string[];
  /** Cut inputs longer than the context instead of failing (Ollama's default: true). */
  truncate?: boolean;
  /** Shorten the vectors to this many dimensions, for models that support it. */
  dimensions?: number;
  options?: Options;
  keep_alive?: KeepAlive;
}

/** `POST /api/embed` answer. */
export interface EmbedResponse {
  model: string;
  embeddings: number[][];
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
}
