import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Webhook } from "standardwebhooks";

/** How the receiver answers right now: 204, 500, never, or not at all (the port is closed). */
export type ReceiverMode = "ok" | "fail" | "hang" | "refuse";

export interface AcceptedEvent {
  eventId: string;
  jobId: string;
  type: string;
  state: string;
  /** Position among every first acceptance, across jobs. */
  seq: number;
}

/**
 * The chaos run's webhook endpoint: a real HTTP server on loopback that verifies every delivery with the
 * `standardwebhooks` library, whatever it answers. Two paths carry two secrets, so a job's own secret and
 * the server-wide default are both checked: `/hook/default` and `/hook/job`. `flap` makes it answer 500,
 * hang, or close its port for a while, then recover by itself.
 */
export async function startFlappingReceiver(secrets: { default: string; job: string }) {
  const verifiers = { "/hook/default": new Webhook(secrets.default), "/hook/job": new Webhook(secrets.job) };
  let mode: ReceiverMode = "ok";
  let seq = 0;
  const accepted = new Map<string, AcceptedEvent>();
  /** Event ids per job in the order of their first acceptance. */
  const acceptedByJob = new Map<string, string[]>();
  const invalid: Array<{ path: string; error: string; eventId: string | undefined }> = [];
  const answered: Record<"ok" | "fail" | "hang", number> = { ok: 0, fail: 0, hang: 0 };
  let arrivals = 0;
  const hung = new Set<http.ServerResponse>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      arrivals++;
      const raw = Buffer.concat(chunks).toString("utf8");
      const path = (req.url ?? "").split("?")[0] as keyof typeof verifiers;
      const verifier = verifiers[path];
      const eventId = req.headers["webhook-id"] as string | undefined;
      let body: { type: string; data: { id: string; state: string } };
      try {
        if (!verifier) throw new Error(`unknown path ${path}`);
        body = verifier.verify(raw, req.headers as Record<string, string>) as typeof body;
      } catch (err) {
        invalid.push({ path, error: (err as Error).message, eventId });
        res.writeHead(400).end();
        return;
      }
      if (mode === "hang") {
        answered.hang++;
        hung.add(res);
        res.on("close", () => hung.delete(res));
        return;
      }
      if (mode === "fail") {
        answered.fail++;
        res.writeHead(500, { "content-type": "text/plain" }).end("receiver flapping");
        return;
      }
      answered.ok++;
      if (eventId && !accepted.has(eventId)) {
        const event = {
          eventId,
          jobId: String(body.data.id),
          type: body.type,
          state: String(body.data.state),
          seq: seq++,
        };
        accepted.set(eventId, event);
        const list = acceptedByJob.get(event.jobId) ?? [];
        list.push(eventId);
        acceptedByJob.set(event.jobId, list);
      }
      res.writeHead(204).end();
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const dropConnections = () => {
    for (const res of hung) res.destroy();
    hung.clear();
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  async function listenAgain(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(port, "127.0.0.1", () => {
            server.off("error", reject);
            resolve();
          });
        });
        return;
      } catch (err) {
        // The port may linger for a moment after close; a bounded number of retries covers that.
        if (attempt >= 40 || closed) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async function recover(): Promise<void> {
    const was = mode;
    mode = "ok";
    if (was === "hang") for (const res of hung) res.destroy();
    if (was === "refuse" && !closed) await listenAgain();
  }

  return {
    port,
    urls: { default: `http://127.0.0.1:${port}/hook/default`, job: `http://127.0.0.1:${port}/hook/job` },
    accepted,
    acceptedByJob,
    invalid,
    answered,
    arrivals: () => arrivals,
    mode: () => mode,
    /** Misbehaves for `ms`, then recovers by itself; false when a flap is already under way. */
    async flap(next: Exclude<ReceiverMode, "ok">, ms: number): Promise<boolean> {
      if (mode !== "ok" || closed) return false;
      mode = next;
      if (next === "refuse") {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        dropConnections();
        await stopped;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        void recover();
      }, ms);
      timers.add(timer);
      return true;
    },
    /** Ends any flap now and resolves once the port answers again. */
    async heal(): Promise<void> {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      if (mode !== "ok") await recover();
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        dropConnections();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
}

export type FlappingReceiver = Awaited<ReturnType<typeof startFlappingReceiver>>;
