import { Router } from "express";

/** Ollama answers its root with this exact text (server/routes.go); clients use it as a liveness check. */
export function rootRoutes(): Router {
  const router = Router();
  router.get("/", (_req, res) => {
    res.type("text/plain; charset=utf-8").send("Ollama is running");
  });
  // Express answers HEAD from the GET handler with the same headers and no body.
  return router;
}
