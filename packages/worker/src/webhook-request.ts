import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { WebhookAddressPolicy } from "@foreman/shared";

/** Every address a host name resolves to, as `dns.lookup(name, { all: true })` gives them. */
export type ResolveHost = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

/** The system resolver (`/etc/hosts` included, as for any other connection the worker makes). */
export const resolveWithSystem: ResolveHost = (hostname) =>
  dns.promises.lookup(hostname, { all: true, verbatim: true });

/** foreman's own address policy refused the delivery: nothing was sent, and retrying cannot change that. */
export class WebhookRefusedError extends Error {
  readonly code = "EWEBHOOKREFUSED";
}

export interface WebhookPost {
  url: URL;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

export interface WebhookAnswer {
  status: number;
  /** The Retry-After header, when the receiver sent one. */
  retryAfter: string | undefined;
}

export type SendWebhook = (post: WebhookPost) => Promise<WebhookAnswer>;

/**
 * POSTs one webhook, connecting only where the address policy allows (ADR 0015).
 *
 * The check is made on the address the socket connects to, not on the name: the request's `lookup` resolves
 * the name once, keeps only the allowed answers and hands exactly those to the connect, so a DNS answer that
 * changes between a check and a connect (DNS rebinding) has no second resolution to slip into. A literal IP
 * host is never looked up, so it is checked before the request. TLS still verifies the certificate against
 * the URL's host name (Node sets the SNI `servername` from it), not against the address.
 *
 * A fresh connection per delivery (no keep-alive) means every delivery is checked afresh; webhook traffic is
 * a few events per job, so the handshake is cheap next to the guarantee. Redirects are not followed: only
 * a 2xx counts, and a 301/302 would turn the POST into a GET without its body.
 */
export function createWebhookSender(options: {
  policy: WebhookAddressPolicy;
  resolve?: ResolveHost;
  /** Extra trusted certificate authorities (tests; NODE_EXTRA_CA_CERTS serves operators). */
  ca?: string | Buffer;
}): SendWebhook {
  const { policy } = options;
  const resolve = options.resolve ?? resolveWithSystem;

  return (post) => {
    const { url } = post;
    const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const trusted = policy.trustsHost(url.hostname, url.port);
    if (net.isIP(hostname) !== 0 && !trusted) {
      const range = policy.refusal(hostname);
      if (range !== null)
        return Promise.reject(new WebhookRefusedError(`${hostname} is not a public address (${range})`));
    }

    const lookup: net.LookupFunction = (name, lookupOptions, callback) => {
      resolve(name).then(
        (answers) => {
          const family = lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : 0;
          const usable = answers.filter((a) => family === 0 || a.family === family);
          const allowed = trusted ? usable : usable.filter((a) => policy.refusal(a.address) === null);
          if (allowed.length === 0) {
            const first = usable[0];
            const why = first
              ? `${name} resolves only to non-public addresses (${policy.refusal(first.address)})`
              : `${name} has no address`;
            callback(first ? new WebhookRefusedError(why) : Object.assign(new Error(why), { code: "ENOTFOUND" }), "");
            return;
          }
          if (lookupOptions.all)
            callback(
              null,
              allowed.map((a) => ({ address: a.address, family: a.family })),
            );
          else callback(null, allowed[0]!.address, allowed[0]!.family);
        },
        (err: NodeJS.ErrnoException) => callback(err, ""),
      );
    };

    const client = url.protocol === "https:" ? https : http;
    return new Promise<WebhookAnswer>((resolveAnswer, reject) => {
      const req = client.request({
        method: "POST",
        protocol: url.protocol,
        hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: `${url.pathname}${url.search}`,
        headers: { ...post.headers, "content-length": String(Buffer.byteLength(post.body)) },
        // The URL's user and password, as any HTTP client would send them; never logged.
        ...(url.username || url.password
          ? { auth: `${decodeUserinfo(url.username)}:${decodeUserinfo(url.password)}` }
          : {}),
        lookup,
        agent: false,
        signal: post.signal,
        ...(options.ca ? { ca: options.ca } : {}),
      });
      req.on("response", (res) => {
        const retryAfter = res.headers["retry-after"];
        resolveAnswer({ status: res.statusCode ?? 0, retryAfter });
        // The answer's body is not needed; closing the connection frees it at once.
        req.destroy();
      });
      req.on("error", reject);
      req.end(post.body);
    });
  };
}

/** A URL's user or password as sent: percent-decoded, or as written when it is not valid percent-encoding. */
export function decodeUserinfo(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
