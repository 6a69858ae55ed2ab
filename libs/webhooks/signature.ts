import { createHmac, timingSafeEqual } from 'node:crypto';

// Webhook signing. The receiver recomputes
//   X-Agentcron-Signature: sha256=<hex HMAC-SHA256 of "<X-Agentcron-Timestamp>.<raw body>", keyed with WEBHOOK_SECRET>
// and rejects a request whose timestamp (Unix seconds) is too old: the timestamp is inside the
// signed text, so a captured request cannot be replayed later with a fresh one.

export const SIGNATURE_HEADER = 'X-Agentcron-Signature';
export const TIMESTAMP_HEADER = 'X-Agentcron-Timestamp';

/** `sha256=<hex>` over `<timestamp>.<body>`. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver runs: true when the signature matches the body and timestamp and the timestamp
 * is within toleranceSeconds of now. Compares in constant time.
 */
export function verifyWebhook(
  secret: string,
  request: { body: string; signature: string | undefined; timestamp: string | undefined },
  opts: { toleranceSeconds?: number; now?: Date } = {},
): boolean {
  const ts = Number(request.timestamp);
  if (!request.signature || !Number.isInteger(ts)) return false;
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - ts) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, ts, request.body));
  const given = Buffer.from(request.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
