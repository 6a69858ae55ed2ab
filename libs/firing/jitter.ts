import { createHash } from 'node:crypto';

// Jitter (docs/flow-control.md): an occurrence of a cron with jitter_seconds starts at its
// scheduled_for plus an offset in [0, jitter_seconds), so a herd of crons on one instant (10,000 on
// "0 9 * * *") spreads over the window instead of hitting a provider at once. The offset is a hash
// of the occurrence's identity (cron_id, scheduled_for): every scheduler, every retry of a pass and
// every answer (ledger, next) computes the same one, and the identity itself never moves, so
// exactly-once is untouched. Pure.

/** The largest jitter_seconds a cron may have (an hour). */
export const MAX_JITTER_SECONDS = 3600;

const TWO_POW_48 = 2 ** 48;

/**
 * The occurrence's offset in milliseconds, in [0, jitter_seconds * 1000): the first 48 bits of
 * sha256("<cron_id>|<scheduled_for ISO>") as a fraction of 2^48, times the window, floored.
 * 0 without jitter.
 */
export function jitterOffsetMs(cronId: string, scheduledFor: Date, jitterSeconds: number): number {
  if (!(jitterSeconds > 0)) return 0;
  const digest = createHash('sha256').update(`${cronId.toLowerCase()}|${scheduledFor.toISOString()}`).digest();
  const fraction = digest.readUIntBE(0, 6) / TWO_POW_48;
  return Math.floor(fraction * jitterSeconds * 1000);
}

/** When the occurrence is planned to start: scheduled_for plus its offset (scheduled_for itself without jitter). */
export function plannedStart(cronId: string, scheduledFor: Date, jitterSeconds: number): Date {
  const offset = jitterOffsetMs(cronId, scheduledFor, jitterSeconds);
  return offset === 0 ? scheduledFor : new Date(scheduledFor.getTime() + offset);
}
