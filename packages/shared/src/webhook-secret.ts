/**
 * A Standard Webhooks signing secret is `whsec_` followed by the base64 of 24 to 64 random bytes. Checked
 * where a secret enters foreman (FOREMAN_WEBHOOK_SECRET at start, a job's `webhook.secret` at submit), so a
 * secret that cannot sign (`whsec_A`) is refused there instead of failing every event of the job later.
 */
export const WEBHOOK_SECRET_FORM = "whsec_<base64> of 24 to 64 bytes";

const MIN_BYTES = 24;
const MAX_BYTES = 64;

/**
 * Why `secret` is not a usable signing secret, or null when it is. The answer never quotes the secret, so it
 * can go into an error body or a log line as it is.
 */
export function webhookSecretProblem(secret: string): string | null {
  if (!secret.startsWith("whsec_")) return `must be ${WEBHOOK_SECRET_FORM}`;
  const encoded = secret.slice("whsec_".length);
  // Canonical base64 only: the signing library rejects wrong padding, and a lenient decoder would accept
  // text that some receivers' libraries read differently.
  const canonical = Buffer.from(encoded, "base64").toString("base64");
  const padded = encoded.length % 4 === 0 ? encoded : encoded + "=".repeat(4 - (encoded.length % 4));
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || canonical !== padded) {
    return `must be ${WEBHOOK_SECRET_FORM} (the part after whsec_ is not base64)`;
  }
  const bytes = Buffer.from(encoded, "base64").length;
  if (bytes < MIN_BYTES || bytes > MAX_BYTES) {
    return `must be ${WEBHOOK_SECRET_FORM} (it decodes to ${bytes})`;
  }
  return null;
}
