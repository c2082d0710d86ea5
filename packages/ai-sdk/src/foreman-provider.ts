import {
  type EmbeddingModelV4,
  type ImageModelV4,
  type LanguageModelV4,
  NoSuchModelError,
  type ProviderV4,
} from "@ai-sdk/provider";
import { ForemanClient, type RetryOptions } from "@foreman/client";
import { ForemanChatLanguageModel } from "./chat-language-model.js";
import { ForemanEmbeddingModel } from "./embedding-model.js";

export interface ForemanProviderSettings {
  /** The gateway's base URL; default `FOREMAN_URL` from the environment, else `http://127.0.0.1:11435`. */
  baseURL?: string;
  /** The gateway's API token; default `FOREMAN_API_TOKEN` from the environment. */
  token?: string;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Time limit of each HTTP request (the client's `timeoutMs`, default 30 s). */
  timeoutMs?: number;
  /** Backoff of the requests that are safe to repeat. */
  retry?: RetryOptions;
  /** A client of your own, instead of one made from the settings above. */
  client?: ForemanClient;
}

export interface ForemanProvider extends ProviderV4 {
  /** A chat model, queued through foreman: `foreman("llama3.2")`. */
  (modelId: string): LanguageModelV4;
  languageModel(modelId: string): LanguageModelV4;
  chat(modelId: string): LanguageModelV4;
  /** An embedding model, answered past the queue: `foreman.embeddingModel("nomic-embed-text")`. */
  embeddingModel(modelId: string): EmbeddingModelV4;
  embedding(modelId: string): EmbeddingModelV4;
  /** The client the models use (made on first use). */
  readonly client: ForemanClient;
}

const DEFAULT_BASE_URL = "http://127.0.0.1:11435";

/**
 * Makes a foreman provider for the Vercel AI SDK. The client is made on first use, so the default
 * `foreman` reads `FOREMAN_URL` and `FOREMAN_API_TOKEN` when it is first called, not when it is imported
 * (and works where there is no `process`, such as a browser, with the default URL).
 */
export function createForeman(settings: ForemanProviderSettings = {}): ForemanProvider {
  let client: ForemanClient | undefined = settings.client;
  const getClient = () => {
    client ??= new ForemanClient({
      baseUrl: settings.baseURL ?? environment("FOREMAN_URL") ?? DEFAULT_BASE_URL,
      ...optional("token", settings.token ?? environment("FOREMAN_API_TOKEN")),
      ...optional("fetch", settings.fetch),
      ...optional("timeoutMs", settings.timeoutMs),
      ...optional("retry", settings.retry),
    });
    return client;
  };
  const languageModel = (modelId: string) => new ForemanChatLanguageModel(checkModelId(modelId), getClient);
  const embeddingModel = (modelId: string) => new ForemanEmbeddingModel(checkModelId(modelId), getClient);

  const provider = ((modelId: string) => languageModel(modelId)) as unknown as ForemanProvider;
  Object.assign(provider, {
    specificationVersion: "v4",
    languageModel,
    chat: languageModel,
    embeddingModel,
    embedding: embeddingModel,
    imageModel(modelId: string): ImageModelV4 {
      throw new NoSuchModelError({ modelId, modelType: "imageModel", message: "foreman serves no image models" });
    },
  });
  Object.defineProperty(provider, "client", { get: getClient, enumerable: true });
  return provider;
}

/** The default provider: `FOREMAN_URL` and `FOREMAN_API_TOKEN` from the environment. */
export const foreman: ForemanProvider = createForeman();

function checkModelId(modelId: string): string {
  if (typeof modelId !== "string" || modelId === "") {
    throw new TypeError('a model id is required, such as foreman("llama3.2")');
  }
  return modelId;
}

function environment(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.[name];
  return value === "" ? undefined : value;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
