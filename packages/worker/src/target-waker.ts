import dgram from "node:dgram";
import net from "node:net";
import type { Logger } from "@foreman/shared";

/** An HTTP request to an operator's URL: a smart plug, Home Assistant, a Wake-on-LAN relay on the LAN. */
export interface HttpWakeAction {
  kind: "http";
  /** May hold credentials (user:password@ is sent as Basic auth); never logged. */
  url: string;
  method: "GET" | "POST" | "PUT";
}

/** A Wake-on-LAN magic packet, sent as one UDP datagram. */
export interface MagicPacketWakeAction {
  kind: "wake-on-lan";
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  address: string;
  port: number;
}

export type WakeAction = HttpWakeAction | MagicPacketWakeAction;

/** Sends the request and resolves with the response status. */
export type HttpWakeSender = (action: HttpWakeAction, timeoutMs: number) => Promise<number>;
export type DatagramSender = (payload: Buffer, address: string, port: number) => Promise<void>;

export interface TargetWakerOptions {
  logger: Logger;
  /** Empty: the waker does nothing (waking is opt-in). */
  actions: readonly WakeAction[];
  /** The wake action runs at most once per this interval. */
  intervalMs: number;
  /** What the target poller last saw: true up, false down, null not polled yet. */
  targetReachable: () => boolean | null;
  /** Whether any job waits in the queue (a cheap EXISTS). */
  hasQueuedJobs: () => boolean;
  /** How often the conditions are checked between kicks. */
  checkEveryMs?: number;
  /** Per HTTP request, for the whole exchange. */
  timeoutMs?: number;
  now?: () => number;
  sendHttp?: HttpWakeSender;
  sendDatagram?: DatagramSender;
}

export const WAKE_USER_AGENT = "foreman-wake/1";

const DEFAULTS = {
  checkEveryMs: 5_000,
  timeoutMs: 10_000,
};

export type WakeDecision = "disabled" | "target-not-down" | "queue-empty" | "too-soon" | "sent";

/** The 102 bytes a Wake-on-LAN listener looks for: six 0xFF, then the MAC sixteen times. */
export function magicPacket(mac: string): Buffer {
  const bytes = Buffer.from(mac.replace(/[:-]/g, ""), "hex");
  if (bytes.length !== 6) throw new Error(`not a MAC address: ${mac}`);
  return Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => bytes)]);
}

/**
 * The default HTTP sender. Credentials in the URL become a Basic authorization header (fetch refuses a URL
 * that holds them). Redirects are not followed: the operator named the endpoint, and a redirect elsewhere
 * is not a wake-up we agreed to send.
 */
export async function sendHttpWake(action: HttpWakeAction, timeoutMs: number): Promise<number> {
  const url = new URL(action.url);
  const headers: Record<string, string> = { "user-agent": WAKE_USER_AGENT };
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    url.username = "";
    url.password = "";
  }
  const res = await fetch(url, {
    method: action.method,
    headers,
    redirect: "manual",
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.body?.cancel();
  return res.status;
}

/** The default datagram sender: one UDP datagram, broadcast allowed (a magic packet usually is one). */
export function sendUdpDatagram(payload: Buffer, address: string, port: number): Promise<void> {
  const v6 = net.isIPv6(address);
  const socket = dgram.createSocket(v6 ? "udp6" : "udp4");
  return new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, () => {
      // Broadcast is an IPv4 notion; a v6 wake-up goes to a multicast group instead.
      if (!v6) socket.setBroadcast(true);
      socket.send(payload, port, address, (err) => (err ? reject(err) : resolve()));
    });
  }).finally(() => {
    try {
      socket.close();
    } catch {
      // Already closed by the error that failed the send.
    }
  });
}

/** Where an action goes, fit for a log line: for a URL only its origin (paths and queries carry tokens). */
function describeAction(action: WakeAction): Record<string, unknown> {
  if (action.kind === "wake-on-lan") {
    return { action: "wake-on-lan", mac: action.mac, to: `${action.address}:${action.port}` };
  }
  return { action: "http", method: action.method, to: new URL(action.url).origin };
}

function errorText(err: unknown, action: WakeAction): string {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  const text = [e.code ?? e.cause?.code, e.cause?.message ?? e.message].filter(Boolean).join(": ");
  // Error texts do not normally quote the URL; this makes sure none ever does.
  return action.kind === "http" ? text.split(action.url).join("[wake url]") : text;
}

/**
 * Wakes a sleeping target: while jobs wait and the target poller sees the target down, runs the operator's
 * wake actions (an HTTP request, a Wake-on-LAN packet, or both), at most once per interval, and logs each.
 * The actions come only from the worker's configuration: nothing from a request or a job reaches them, and
 * none runs a command. The decision is remade at every check from what the poller and the queue say now, so
 * the waker holds no state but the time it last fired.
 */
export function createTargetWaker(options: TargetWakerOptions) {
  const { logger, actions } = options;
  const now = options.now ?? Date.now;
  const checkEveryMs = options.checkEveryMs ?? DEFAULTS.checkEveryMs;
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const sendHttp = options.sendHttp ?? sendHttpWake;
  const sendDatagram = options.sendDatagram ?? sendUdpDatagram;
  let lastFiredAt: number | null = null;
  let inFlight: Promise<WakeDecision> | null = null;
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function runAction(action: WakeAction): Promise<void> {
    const where = describeAction(action);
    try {
      if (action.kind === "http") {
        const status = await sendHttp(action, timeoutMs);
        if (status >= 200 && status < 400) logger.info("target wake sent", { ...where, status });
        else logger.warn("target wake answered with an error", { ...where, status });
      } else {
        await sendDatagram(magicPacket(action.mac), action.address, action.port);
        logger.info("target wake sent", where);
      }
    } catch (err) {
      logger.warn("target wake failed", { ...where, error: errorText(err, action) });
    }
  }

  async function check(): Promise<WakeDecision> {
    if (actions.length === 0) return "disabled";
    // Unknown (not polled yet) is not down: a wake-up is only for a target seen unreachable.
    if (options.targetReachable() !== false) return "target-not-down";
    if (!options.hasQueuedJobs()) return "queue-empty";
    const at = now();
    if (lastFiredAt !== null && at - lastFiredAt < options.intervalMs) return "too-soon";
    // Counted from the attempt, not its success: a failing action is not retried faster than a working one.
    lastFiredAt = at;
    await Promise.all(actions.map(runAction));
    return "sent";
  }

  /** One check (and the wake-up, when due); concurrent callers share the check under way. */
  function runOnce(): Promise<WakeDecision> {
    inFlight ??= check().finally(() => {
      inFlight = null;
    });
    return inFlight;
  }

  function checkSafely(): Promise<unknown> {
    return runOnce().catch((err: unknown) => logger.warn("target wake check failed", { error: String(err) }));
  }

  function schedule(): void {
    timer = setTimeout(async () => {
      await checkSafely();
      if (running) schedule();
    }, checkEveryMs);
    // The waker alone never keeps the process alive; the worker's main loop does.
    timer.unref();
  }

  return {
    runOnce,
    /** Check now: the target was just seen down, or a job was just queued. */
    kick(): void {
      if (running) void checkSafely();
    },
    start(): void {
      if (running || actions.length === 0) return;
      running = true;
      schedule();
    },
    async stop(): Promise<void> {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight?.catch(() => undefined);
    },
  };
}

/** The wake actions the configuration asks for (none unless the operator set a URL or a MAC). */
export function wakeActionsFromConfig(config: {
  wakeUrl: string | undefined;
  wakeMethod: HttpWakeAction["method"];
  wakeMac: string | undefined;
  wakeBroadcast: { address: string; port: number };
}): WakeAction[] {
  const actions: WakeAction[] = [];
  if (config.wakeUrl) actions.push({ kind: "http", url: config.wakeUrl, method: config.wakeMethod });
  if (config.wakeMac) {
    actions.push({
      kind: "wake-on-lan",
      mac: config.wakeMac,
      address: config.wakeBroadcast.address,
      port: config.wakeBroadcast.port,
    });
  }
  return actions;
}

export type TargetWaker = ReturnType<typeof createTargetWaker>;
