import net from "node:net";

/**
 * Where a webhook may be delivered (ADR 0015). By default only to public addresses: a job's webhook URL is
 * chosen by whoever submits the job, and without this rule foreman would POST to the target's own
 * management routes, to cloud metadata services, or to anything else reachable from the worker's network,
 * and report back on the job whether each one answered.
 *
 * The operator opens exceptions with FOREMAN_WEBHOOK_ALLOWED_HOSTS, a comma-separated list of:
 * - host names (`hooks.internal`, `*.example.com` for any subdomain, optionally `:port`): a URL with that
 *   host may resolve to any address, private ones included; the name is trusted, not its answers;
 * - IP addresses and CIDR ranges (`127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`): connecting to an address
 *   inside them is allowed whatever name led there.
 * Everything else is allowed only when every address it is connected to is public. The check is on the
 * address actually connected to (see the worker's webhook-request.ts), never on the name alone.
 */

/** IPv4 ranges that are not public, most specific first (IANA special-purpose registry, RFC 6890). */
const V4_RANGES: ReadonlyArray<readonly [cidr: string, label: string]> = [
  ["0.0.0.0/32", "unspecified"],
  ["0.0.0.0/8", "this-network"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-grade NAT"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol assignment"],
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "6to4 relay anycast"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["255.255.255.255/32", "broadcast"],
  ["240.0.0.0/4", "reserved"],
];

/**
 * IPv6 ranges that are not public. The v4-mapped, NAT64 and 6to4 prefixes are not listed: they carry an
 * IPv4 address, which is judged instead. Anything outside 2000::/3 (global unicast) is reserved as well.
 */
const V6_RANGES: ReadonlyArray<readonly [cidr: string, label: string]> = [
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["64:ff9b:1::/48", "local-use NAT64"],
  ["100::/64", "discard-only"],
  ["2001::/23", "IETF protocol assignment"],
  ["2001:db8::/32", "documentation"],
  ["3fff::/20", "documentation"],
  ["fc00::/7", "unique local"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "site-local"],
  ["ff00::/8", "multicast"],
];

function blockListOf(cidr: string): net.BlockList {
  const [address, prefix] = cidr.split("/") as [string, string];
  const list = new net.BlockList();
  list.addSubnet(address, Number(prefix), net.isIPv6(address) ? "ipv6" : "ipv4");
  return list;
}

const V4_LISTS = V4_RANGES.map(([cidr, label]) => ({ label, list: blockListOf(cidr) }));
const V6_LISTS = V6_RANGES.map(([cidr, label]) => ({ label, list: blockListOf(cidr) }));
const GLOBAL_UNICAST_V6 = blockListOf("2000::/3");

/** An IPv6 address as its eight 16-bit groups (the address is known to be valid). */
function ipv6Groups(address: string): number[] {
  let text = address;
  // A dotted IPv4 tail (::ffff:127.0.0.1) becomes the two groups it stands for.
  if (text.includes(".")) {
    const cut = text.lastIndexOf(":") + 1;
    const [a, b, c, d] = text.slice(cut).split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, cut)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const parse = (part: string | undefined) => (part ? part.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const first = parse(head);
  if (tail === undefined) return first;
  const last = parse(tail);
  return [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last];
}

const v4Of = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;

/** The IPv4 address an IPv6 address stands for or routes to, if any, with the mechanism's name. */
function embeddedIPv4(groups: number[]): { v4: string; via: string } | null {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  // A socket connected to ::ffff:a.b.c.d talks to a.b.c.d over IPv4.
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff)
    return { v4: v4Of(g6, g7), via: "IPv4-mapped" };
  // A NAT64 gateway forwards 64:ff9b::a.b.c.d to a.b.c.d (RFC 6052).
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0)
    return { v4: v4Of(g6, g7), via: "NAT64" };
  // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 is the site behind IPv4 AA.BB.CC.DD.
  if (g0 === 0x2002) return { v4: v4Of(g1, g2), via: "6to4" };
  return null;
}

function v4Range(address: string): string | null {
  for (const { label, list } of V4_LISTS) if (list.check(address, "ipv4")) return label;
  return null;
}

/**
 * The non-public range an IP address lies in ("loopback", "private", …), or null when it is public.
 * IPv6 addresses that embed an IPv4 one (v4-mapped, NAT64, 6to4) are judged by the IPv4 address.
 * Anything that is not an IP address at all is refused too.
 */
export function nonPublicRange(address: string): string | null {
  const bare = unbracket(address).replace(/%.*$/, "");
  const family = net.isIP(bare);
  if (family === 4) return v4Range(bare);
  if (family !== 6) return "not an IP address";
  const embedded = embeddedIPv4(ipv6Groups(bare));
  if (embedded) {
    const range = v4Range(embedded.v4);
    return range === null ? null : `${range}, ${embedded.via}`;
  }
  for (const { label, list } of V6_LISTS) if (list.check(bare, "ipv6")) return label;
  return GLOBAL_UNICAST_V6.check(bare, "ipv6") ? null : "reserved";
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

type Entry =
  | { kind: "name"; name: string; wildcard: boolean; port: string | null }
  | { kind: "address"; address: string; prefix: number; family: 4 | 6 };

const NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/;

/** One allowlist entry, or an Error whose message says what is wrong with it. */
function parseEntry(raw: string): Entry | Error {
  const text = raw.trim().toLowerCase();
  const bad = (why: string) => new Error(`entry ${JSON.stringify(raw.trim())} ${why}`);
  if (text.includes("/")) {
    const [address, prefixText, extra] = text.split("/") as [string, string, string | undefined];
    const bare = unbracket(address);
    const family = net.isIP(bare);
    const max = family === 4 ? 32 : 128;
    if (extra !== undefined || family === 0 || !/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max)
      return bad(`is not a CIDR range such as 10.0.0.0/8 or fd00::/8`);
    return { kind: "address", address: bare, prefix: Number(prefixText), family: family as 4 | 6 };
  }
  const bare = unbracket(text);
  const family = net.isIP(bare);
  if (family !== 0) return { kind: "address", address: bare, prefix: family === 4 ? 32 : 128, family: family as 4 | 6 };
  const portMatch = /:(\d{1,5})$/.exec(text);
  const host = portMatch ? text.slice(0, portMatch.index) : text;
  if (!NAME.test(host)) return bad("is not a host name, IP address or CIDR range");
  const wildcard = host.startsWith("*.");
  const name = (wildcard ? host.slice(2) : host).replace(/\.$/, "");
  // A name that URL parsing reads as an IPv4 address (127.1, 2130706433) would never match a URL's host.
  if (!wildcard) {
    const parsed = new URL(`http://${name}/`).hostname;
    if (net.isIPv4(parsed)) return bad(`is an IPv4 address in an unusual form: write ${parsed}`);
  }
  return { kind: "name", name, wildcard, port: portMatch ? portMatch[1]! : null };
}

/**
 * Checks and normalizes FOREMAN_WEBHOOK_ALLOWED_HOSTS (comma-separated). Throws an Error naming the first
 * bad entry.
 */
export function parseWebhookAllowlist(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(",")) {
    if (raw.trim() === "") continue;
    const entry = parseEntry(raw);
    if (entry instanceof Error) throw entry;
    out.push(
      entry.kind === "address"
        ? entry.prefix === (entry.family === 4 ? 32 : 128)
          ? entry.address
          : `${entry.address}/${entry.prefix}`
        : `${entry.wildcard ? "*." : ""}${entry.name}${entry.port ? `:${entry.port}` : ""}`,
    );
  }
  return out;
}

export interface WebhookAddressPolicy {
  /**
   * The URL's host is a host-name entry of the allowlist, so it may resolve to any address. `hostname`
   * and `port` as WHATWG URL parsing gives them (`url.hostname`, `url.port`).
   */
  trustsHost(hostname: string, port?: string): boolean;
  /** Why connecting to `address` is refused (the range it lies in), or null when it is allowed. */
  refusal(address: string): string | null;
}

const compiled = new WeakMap<readonly string[], WebhookAddressPolicy>();

/**
 * The policy for an allowlist. Compiled once per list (the config's list is one frozen array), so the
 * submit path can ask for it on every request.
 */
export function webhookAddressPolicy(allowlist: readonly string[]): WebhookAddressPolicy {
  const cached = compiled.get(allowlist);
  if (cached) return cached;
  const names: Array<Extract<Entry, { kind: "name" }>> = [];
  const addresses = new net.BlockList();
  for (const raw of allowlist) {
    const entry = parseEntry(raw);
    if (entry instanceof Error) throw entry;
    if (entry.kind === "name") names.push(entry);
    else addresses.addSubnet(entry.address, entry.prefix, entry.family === 4 ? "ipv4" : "ipv6");
  }
  const policy: WebhookAddressPolicy = {
    trustsHost(hostname, port = "") {
      const host = hostname.toLowerCase().replace(/\.$/, "");
      if (net.isIP(unbracket(host))) return false;
      return names.some(
        (n) => (n.port === null || n.port === port) && (n.wildcard ? host.endsWith(`.${n.name}`) : host === n.name),
      );
    },
    refusal(address) {
      const bare = unbracket(address).replace(/%.*$/, "");
      const family = net.isIP(bare);
      // BlockList also matches an IPv4 entry against the IPv4-mapped form of the address.
      if (family !== 0 && addresses.check(bare, family === 4 ? "ipv4" : "ipv6")) return null;
      return nonPublicRange(bare);
    },
  };
  compiled.set(allowlist, policy);
  return policy;
}

/**
 * The submit-time check: when a webhook URL's host is a literal IP address, whether it may be used, as a
 * sentence for a 400 (null when allowed, or when the host is a name, which is checked at each delivery).
 */
export function literalWebhookAddressProblem(url: URL, policy: WebhookAddressPolicy): string | null {
  const address = unbracket(url.hostname);
  if (net.isIP(address) === 0) return null;
  const range = policy.refusal(address);
  if (range === null) return null;
  return `${address} is not a public address (${range}); webhooks to non-public addresses are refused unless FOREMAN_WEBHOOK_ALLOWED_HOSTS allows them`;
}
