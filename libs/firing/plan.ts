import type { Schedule } from '../schedule/index.ts';

export type MissedPolicy = 'latest' | 'all' | 'none';
export type SkipReason = 'missed' | 'overlap' | 'end_time';

export interface PlanInput {
  schedule: Schedule;
  /** The cron's next_run_date: the first due occurrence. */
  nextRunDate: Date;
  endTime: Date | null;
  missedPolicy: MissedPolicy;
}

export interface PlanLimits {
  /** Most occurrences fired at once under the "all" policy (CRON_MISSED_MAX). */
  missedMax: number;
  /** An occurrence later than this is missed even when it is the only one due. */
  graceMs: number;
  /** Most skipped occurrences recorded one row each; the rest are only counted. */
  ledgerCap: number;
  /**
   * Since when the scheduler planning this has been running. An occurrence due at or after it
   * fell due while a scheduler ran (perhaps unable to reach the database, or asleep without
   * LISTEN): it is late, not missed, and fires whatever the policy (up to missedMax, newest
   * first; `none` still drops those later than graceMs). The missed policy decides only the
   * occurrences due before it: when no scheduler ran. Unset: every due occurrence follows the policy.
   */
  coveredFrom?: Date | null;
}

export interface OccurrencePlan {
  /** Occurrences to fire, oldest first; skipped_count = missed occurrences skipped in favour of this one. */
  fire: { scheduled_for: Date; skipped_count: number }[];
  /** Occurrences that will not run, with why (at most ledgerCap of the missed ones). */
  skipped: { scheduled_for: Date; reason: SkipReason }[];
  /** How many missed occurrences were skipped in all (may exceed skipped.length). */
  missedCount: number;
  /** The cron's next occurrence after this pass, or null when end_time has passed (the cron is finished). */
  nextRunDate: Date | null;
}

// Enumerating due occurrences stops here; past it (a seconds schedule down for days) the latest
// due occurrence is found by probing instead and the count is a lower bound.
const SCAN_LIMIT = 10_000;
const PROBE_SPANS_MS = [1e3, 60e3, 3600e3, 86400e3, 31 * 86400e3, 366 * 86400e3, 5 * 366 * 86400e3];

/** The latest occurrence at or before `now`, found without prev() (unreliable around DST). */
function latestAtOrBefore(schedule: Schedule, now: Date, notBefore: Date): Date {
  for (const span of PROBE_SPANS_MS) {
    const from = new Date(Math.max(now.getTime() - span, notBefore.getTime()));
    let c = schedule.nextAfter(from);
    if (c.getTime() > now.getTime()) continue;
    for (;;) {
      const n = schedule.nextAfter(c);
      if (n.getTime() > now.getTime()) return c;
      c = n;
    }
  }
  return notBefore;
}

/**
 * Decides, for a due cron at database time `now`, which occurrences fire, which are skipped and
 * why, and the next occurrence. Pure: the scheduler applies the plan in one transaction.
 * Occurrences follow from the previous *scheduled* occurrence, never from `now`.
 */
export function planOccurrences(input: PlanInput, now: Date, limits: PlanLimits): OccurrencePlan {
  const { schedule, endTime } = input;
  const first = input.nextRunDate;
  const more = schedule.occurrencesBetween(first, now, SCAN_LIMIT);
  let due = [first, ...more.dates];
  if (more.truncated) {
    const latest = latestAtOrBefore(schedule, now, due[due.length - 1]);
    if (latest.getTime() > due[due.length - 1].getTime()) due.push(latest);
  }
  const skipped: OccurrencePlan['skipped'] = [];
  const following = schedule.nextAfter(due[due.length - 1]);
  let nextRunDate: Date | null = following;

  if (endTime) {
    const pastEnd = due.find((d) => d.getTime() > endTime.getTime()) ?? (following.getTime() > endTime.getTime() ? following : undefined);
    due = due.filter((d) => d.getTime() <= endTime.getTime());
    if (pastEnd) {
      // Recorded once: the first occurrence that end_time stopped.
      if (pastEnd.getTime() <= now.getTime()) skipped.push({ scheduled_for: pastEnd, reason: 'end_time' });
      nextRunDate = null;
    }
  }

  const lateCutoff = now.getTime() - limits.graceMs;
  const coveredFrom = limits.coveredFrom?.getTime();
  // A suffix of due (sorted): what fell due while this scheduler ran.
  const covered = coveredFrom === undefined ? [] : due.filter((d) => d.getTime() >= coveredFrom);
  // Every choice below is a suffix of due, so the missed ones are what precedes it.
  let fire: Date[];
  switch (input.missedPolicy) {
    case 'latest':
      fire = covered.length ? covered.slice(-limits.missedMax) : due.slice(-1);
      break;
    case 'all':
      fire = due.slice(-limits.missedMax);
      break;
    case 'none': {
      const candidates = covered.length ? covered.slice(-limits.missedMax) : due.slice(-1);
      fire = candidates.filter((d) => d.getTime() >= lateCutoff);
      break;
    }
  }
  const missed = due.slice(0, due.length - fire.length);
  // After probing, occurrences between the scanned ones and the latest were never enumerated:
  // the count is then a lower bound.
  const missedCount = missed.length;
  for (const d of missed.slice(-limits.ledgerCap)) skipped.push({ scheduled_for: d, reason: 'missed' });
  skipped.sort((a, b) => a.scheduled_for.getTime() - b.scheduled_for.getTime());
  return {
    fire: fire.map((d, i) => ({ scheduled_for: d, skipped_count: i === fire.length - 1 ? missedCount : 0 })),
    skipped,
    missedCount,
    nextRunDate,
  };
}
