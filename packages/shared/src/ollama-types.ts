/**
 * Ollama's HTTP API wire types, the ones foreman reads or holds its client's copies to, exactly as they
 * travel, with Ollama's own field names (`eval_count`, `done_reason`, `keep_alive`, ...). A type nothing
 * uses is not kept here: add it from the sources below when it is needed.
 *
 * Sources: api/types.go and docs/api.md in ollama/ollama, src/interfaces.ts in ollama/ollama-js.
 * Go marks most response fields `omitempty`, so a field that is zero on the wire is simply absent:
 * that is why nearly everything below is optional. Durations are integers in nanoseconds and
 * timestamps are RFC 3339 strings (Go's `time.Time` JSON form).
 *
 * Types only: this module must compile to nothing at run time.
 */

// ---------------------------------------------------------------------------------------------
// Shared building blocks
// ---------------------------------------------------------------------------------------------

/**
 * How long the model stays loaded after the request: a Go duration string ("5m", "1h30m",
 * "300ms"), a number of seconds, `0` to unload right after the request, or a negative value to
 * keep it loaded indefinitely (api.Duration in api/types.go).
 */
export type KeepAlive = string | number;

/** `think`: a boolean, or a level for models that support levels (api.ThinkValue). */
export type ThinkValue = boolean | "high" | "medium" | "low" | "max";

/** `format`: `"json"` for JSON mode, or a JSON schema object for structured outputs. */
export type Format = "json" | Record<string, unknown>;

/** Model capabilities as `/api/show` reports them (types/model/capability.go). */
export type Capability =
  | "completion"
  | "tools"
  | "insert"
  | "vision"
  | "embedding"
  | "thinking"
  | "image"
  | "audio"
  | (string & {});

/**
 * Why generation stopped. "load" and "unload" answer a generate/chat request that carried no
 * prompt or messages (server/routes.go GenerateHandler and ChatHandler).
 */
export type DoneReason = "stop" | "length" | "load" | "unload" | (string & {});

/**
 * Model options (api.Options plus api.Runner). Ollama accepts any key here and ignores unknown
 * ones with a warning, so this is a loose record with the common keys typed.
 */
export interface Options {
  [key: string]: unknown;
  // Runner options: fixed when the model is loaded.
  num_ctx?: number;
  num_batch?: number;
  num_gpu?: number;
  main_gpu?: number;
  use_mmap?: boolean;
  num_thread?: number;
  // Predict options: per request.
  num_keep?: number;
  seed?: number;
  num_predict?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  typical_p?: number;
  repeat_last_n?: number;
  temperature?: number;
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  stop?: string[];
}

/**
 * Timing and token counts. Only the final chunk of a generate/chat response carries them
 * (all `omitempty` in api.Metrics); durations are nanoseconds.
 */
export interface Metrics {
  total_duration?: number;
  load_duration?: number;
  prompt_eval_count?: number;
  prompt_eval_duration?: number;
  eval_count?: number;
  eval_duration?: number;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes?: number[];
}

export interface Logprob extends TokenLogprob {
  top_logprobs?: TokenLogprob[];
}

// ---------------------------------------------------------------------------------------------
// Chat messages and tools
// ---------------------------------------------------------------------------------------------

export type Role = "system" | "user" | "assistant" | "tool" | (string & {});

export interface ToolCallFunction {
  index?: number;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ToolCall {
  id?: string;
  function: ToolCallFunction;
}

export interface Message {
  role: Role;
  content: string;
  /** Text the model produced inside its thinking tags when `think` is enabled. */
  thinking?: string;
  /** Base64-encoded images. */
  images?: string[];
  tool_calls?: ToolCall[];
  tool_name?: string;
  tool_call_id?: string;
}

/** A JSON Schema property: the keys Ollama reads (api.ToolProperty) are typed, others pass through. */
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

export interface ToolFunction {
  name: string;
  description?: string;
  parameters: {
    type: string;
    $defs?: unknown;
    items?: unknown;
    required?: string[];
    properties?: Record<string, ToolProperty>;
  };
}

export interface Tool {
  type: "function" | (string & {});
  items?: unknown;
  function: ToolFunction;
}

// ---------------------------------------------------------------------------------------------
// POST /api/generate
// ---------------------------------------------------------------------------------------------

/** One NDJSON line of a generate stream, or the whole answer when `stream: false`. */
export interface GenerateResponse extends Metrics {
  model: string;
  remote_model?: string;
  remote_host?: string;
  /** RFC 3339 with nanoseconds, UTC ("2023-08-04T19:22:45.499127Z"). */
  created_at: string;
  response: string;
  thinking?: string;
  done: boolean;
  done_reason?: DoneReason;
  /** Only on the final chunk. */
  context?: number[];
  tool_calls?: ToolCall[];
  logprobs?: Logprob[];
}

// ---------------------------------------------------------------------------------------------
// POST /api/chat
// ---------------------------------------------------------------------------------------------

/** One NDJSON line of a chat stream, or the whole answer when `stream: false`. */
export interface ChatResponse extends Metrics {
  model: string;
  remote_model?: string;
  remote_host?: string;
  created_at: string;
  message: Message;
  done: boolean;
  done_reason?: DoneReason;
  logprobs?: Logprob[];
}

// ---------------------------------------------------------------------------------------------
// Models: GET /api/tags, GET /api/ps, POST /api/show, GET /api/version
// ---------------------------------------------------------------------------------------------

export interface ModelDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[] | null;
  parameter_size: string;
  quantization_level: string;
  context_length?: number;
  embedding_length?: number;
}

/** An entry of `GET /api/tags`. */
export interface ListModelResponse {
  name: string;
  model: string;
  remote_model?: string;
  remote_host?: string;
  /** RFC 3339 in the server's local zone ("2024-06-04T14:38:31.83753-07:00"). */
  modified_at: string;
  size: number;
  /** Hex sha256 of the manifest, without the "sha256:" prefix. */
  digest: string;
  details: ModelDetails;
  capabilities?: Capability[];
}

/** GET /api/tags */
export interface ListResponse {
  models: ListModelResponse[];
}

/** An entry of `GET /api/ps`: a model loaded right now. */
export interface ProcessModelResponse {
  name: string;
  model: string;
  size: number;
  digest: string;
  details: ModelDetails;
  /**
   * When the model will be unloaded, RFC 3339 in the server's local zone. A model pinned with a
   * negative keep_alive shows a date about 292 years ahead (now + the largest Go duration).
   */
  expires_at: string;
  size_vram: number;
  context_length: number;
}

export interface ProcessResponse {
  models: ProcessModelResponse[];
}

export interface ShowResponse {
  license?: string;
  modelfile?: string;
  parameters?: string;
  template?: string;
  system?: string;
  renderer?: string;
  parser?: string;
  details: ModelDetails;
  messages?: Message[];
  remote_model?: string;
  remote_host?: string;
  model_info: Record<string, unknown>;
  projector_info?: Record<string, unknown>;
  tensors?: Array<{ name: string; type: string; shape: number[] }>;
  capabilities?: Capability[];
  modified_at: string;
  requires?: string;
}

export interface VersionResponse {
  version: string;
}

// ---------------------------------------------------------------------------------------------
// OpenAI-compatible routes (/v1), as openai/openai.go shapes them
// ---------------------------------------------------------------------------------------------

export interface OpenAIError {
  message: string;
  /** "invalid_request_error" (400), "not_found_error" (404) or "api_error". */
  type: string;
  param: unknown;
  code: string | null;
}

export interface OpenAIErrorResponse {
  error: OpenAIError;
}

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface OpenAIMessage {
  role: string;
  content: unknown;
  reasoning?: string;
  tool_calls?: OpenAIToolCall[];
  name?: string;
  tool_call_id?: string;
}

export interface OpenAIToolCall {
  id: string;
  index: number;
  type: string;
  function: { name: string; arguments: string };
}

export interface OpenAIChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ index: number; message: OpenAIMessage; finish_reason: string | null }>;
  usage: OpenAIUsage;
}

export interface OpenAIChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string | null; reasoning?: string; tool_calls?: OpenAIToolCall[] };
    finish_reason: string | null;
  }>;
  usage?: OpenAIUsage;
}

export interface OpenAICompletion {
  id: string;
  /** Both the whole answer and each streamed chunk say "text_completion". */
  object: "text_completion";
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ text: string; index: number; finish_reason: string | null }>;
  usage?: OpenAIUsage;
}

export interface OpenAIEmbeddingList {
  object: "list";
  data: Array<{ object: "embedding"; embedding: number[] | string; index: number }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface OpenAIModelList {
  object: "list";
  data: Array<{ id: string; object: "model"; created: number; owned_by: string }>;
}

/** One line of /api/pull's (and /api/push's, /api/create's) progress stream. */
export interface ProgressResponse {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}
