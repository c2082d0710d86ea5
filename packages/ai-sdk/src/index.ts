export type { ForemanProviderOptions } from "./call-settings.js";
export { ForemanChatLanguageModel } from "./chat-language-model.js";
export { ForemanEmbeddingModel } from "./embedding-model.js";
export { createForeman, type ForemanProvider, type ForemanProviderSettings, foreman } from "./foreman-provider.js";
