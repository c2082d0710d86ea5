import { sendText } from "../http-io.js";
import type { RequestScope } from "../route-context.js";

/** GET and HEAD /: the health answer every Ollama client probes. */
export function rootRoute(scope: RequestScope): void {
  sendText(scope.res, 200, "Ollama is running");
}
