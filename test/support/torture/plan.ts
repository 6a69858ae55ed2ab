// Which attempts of the torture agent fail, and how: a pure function of the occurrence's
// idempotency key, so the fixture agent (test/fixtures/agents/torture.ts) and the checker agree
// without talking. Only crons whose input says `fail_plan: true` follow it (see driver.ts).

/** The agent's failures are RetryableErrors with this message prefix. */
export const PLANNED_FAILURE = 'torture planned failure';

/** Stands for "every attempt fails". */
export const ALWAYS = 99;

export interface FailurePlan {
  /** Attempts 1..fails throw a RetryableError (ALWAYS: every attempt). */
  fails: number;
  /** The Retry-After the error carries (seconds), or null for the policy's backoff. */
  retryAfterSeconds: number | null;
}

/** FNV-1a, 32 bits: stable across processes and Node versions. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Of 8 occurrences: one fails its first attempt, one its first two, one every attempt; a quarter of those carry Retry-After 0.2 s. */
export function failurePlan(idempotencyKey: string): FailurePlan {
  const h = hash(idempotencyKey);
  const fails = [1, 2, ALWAYS, 0, 0, 0, 0, 0][h % 8];
  return { fails, retryAfterSeconds: fails && (h >>> 3) % 4 === 0 ? 0.2 : null };
}
