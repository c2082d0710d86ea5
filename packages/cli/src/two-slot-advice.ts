/**
 * What to change on the Ollama host when the embedder and a worker model cannot stay loaded together. It is
 * printed by `foreman models check` when the check fails, and is the same text the deployment guide gives.
 */
export function twoSlotAdvice(): string {
  return [
    "foreman needs the target to keep two models loaded: the embedder (pinned) and one worker model.",
    "On the Ollama host:",
    "",
    "  1. Allow two loaded models: OLLAMA_MAX_LOADED_MODELS=2",
    "     macOS (the Ollama app):",
    "       launchctl setenv OLLAMA_MAX_LOADED_MODELS 2",
    "       then quit the Ollama app and start it again",
    "     Linux (systemd):",
    "       sudo systemctl edit ollama.service",
    "       and add:",
    "         [Service]",
    '         Environment="OLLAMA_MAX_LOADED_MODELS=2"',
    "       then: sudo systemctl daemon-reload && sudo systemctl restart ollama",
    "",
    "  2. Listen where foreman can reach it: OLLAMA_HOST=0.0.0.0:11434 (the same way:",
    '     launchctl setenv OLLAMA_HOST 0.0.0.0:11434, or Environment="OLLAMA_HOST=0.0.0.0:11434").',
    "",
    "  3. If OLLAMA_MAX_LOADED_MODELS is already 2, the two models may not fit in memory together:",
    "     choose a smaller worker model or quantization.",
    "",
    "Then run `foreman models check` again.",
  ].join("\n");
}
