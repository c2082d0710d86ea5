/**
 * How webhook URLs are grouped. Two groupings, for two different questions:
 * - the receiver (`webhookOrigin`: scheme, host and port) is what a slow or hanging server holds up, so
 *   per-receiver concurrency counts by it;
 * - the endpoint (`webhookEndpoint`: the whole URL but its user, password and fragment) is what a 410 Gone
 *   or a long outage says is dead, so disabling is by it: a 410 from one path of a shared receiver
 *   (`https://hooks.example.com/team-a`) must not disable the others.
 * Neither contains the URL's user or password, so both can be logged.
 */
export function webhookOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return withoutCredentials(url);
  }
}

export function webhookEndpoint(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.hash = "";
    return u.href;
  } catch {
    return withoutCredentials(url);
  }
}

/** For text that URL parsing rejects: drop anything between the scheme and an "@" in the authority. */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1");
}
