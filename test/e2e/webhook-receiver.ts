import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface ReceivedEvent {
  id: string;
  type: string;
  jobId: string;
  state: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
}

/**
 * A real HTTP webhook receiver on loopback that verifies every delivery with the `standardwebhooks`
 * library (an unverifiable one is answered 400 and recorded as such). `respond` picks the answer for each
 * attempt: a status, or "hang" to never answer (the sender's timeout).
 */
export async function startReceiver(
  secret: string,
  respond: (attempt: number, event: ReceivedEvent) => number | "hang" = () => 204,
) {
  const verifier = new Webhook(secret);
  const accepted: ReceivedEvent[] = [];
  const invalid: string[] = [];
  const attempts = new Map<string, number>();
  const waiters: Array<{ test: () => boolean; resolve: () => void }> = [];
  const hung = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      let event: ReceivedEvent;
      try {
        const body = verifier.verify(raw, req.headers as Record<string, string>) as ReceivedEvent["body"];
        event = {
          id: String(req.headers["webhook-id"]),
          type: body.type,
          jobId: String(body.data.id),
          state: String(body.data.state),
          body,
        };
      } catch (err) {
        invalid.push((err as Error).message);
        res.writeHead(400).end();
        return;
      }
      const attempt = (attempts.get(event.id) ?? 0) + 1;
      attempts.set(event.id, attempt);
      const answer = respond(attempt, event);
      if (answer === "hang") {
        hung.add(res);
        return;
      }
      if (answer >= 200 && answer < 300 && !accepted.some((e) => e.id === event.id)) accepted.push(event);
      res.writeHead(answer).end();
      for (const w of waiters.splice(0))
        if (!w.test()) waiters.push(w);
        else w.resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    accepted,
    invalid,
    attempts,
    /** Resolves once `test` holds over what was accepted; rejects after `timeoutMs`. */
    until(test: () => boolean, timeoutMs = 15_000): Promise<void> {
      if (test()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`receiver: condition not met; got ${accepted.map((e) => e.type).join(",")}`)),
          timeoutMs,
        );
        waiters.push({
          test,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    close: () =>
      new Promise<void>((r) => {
        for (const res of hung) res.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
