import { loadConfig } from "@foreman/shared";

/**
 * The gateway container's health check (the image's HEALTHCHECK runs
 * `node /app/packages/gateway/dist/healthcheck.js`, so the image needs no curl): exit 0 when this
 * container's gateway answers `/healthz`, 1 otherwise, with one line that says why.
 */
async function check(): Promise<{ healthy: boolean; message: string }> {
  let url = "";
  try {
    const config = loadConfig();
    // A wildcard listen address is reached on loopback; a specific one only on itself.
    const host =
      config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host.replace(/^\[|\]$/g, "");
    url = `http://${host.includes(":") ? `[${host}]` : host}:${config.port}/healthz`;
    const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
    await res.body?.cancel();
    return { healthy: res.ok, message: `${url} answered ${res.status}` };
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    return { healthy: false, message: `${url || "gateway"}: ${(err as Error).message}${cause ? ` (${cause})` : ""}` };
  }
}

const health = await check();
process.stdout.write(`${health.message}\n`);
process.exitCode = health.healthy ? 0 : 1;
