import type { Queryable } from '../db/index.ts';
import { answerClock, shownNextRunDate } from './answers.ts';
import { canonicalTimezone, scheduleOf, zonedSchedule } from './input.ts';
import { listOccurrences, listRecentOccurrences, toOccurrenceResponse } from './occurrences.ts';
import { describeSchedule, fireTimes, upcomingTimes } from './preview.ts';
import type { FireTime } from './preview.ts';
import { missing } from '../refusal/index.ts';
import { getCron, statementNow } from './repository.ts';

// What the API reads of crons beyond a Cron: a schedule's fire times before any cron has it, a
// cron's next fire times, its occurrence ledger, the owner's recent occurrences across its crons.

/** A schedule's fire times (the API's CronPreviewResult), by the same rules as create (same refusals). */
export async function previewSchedule(
  db: Queryable,
  given: { schedule: string; timezone?: string | null; from?: Date | null; count: number; jitter_seconds?: number | null },
  allowSeconds: boolean,
): Promise<{ schedule: string; timezone: string; description: string; from: string; jitter_seconds: number; next: FireTime[] }> {
  const zoned = zonedSchedule(given.schedule, given.timezone);
  const schedule = scheduleOf(zoned.schedule, canonicalTimezone(zoned.timezone ?? null), allowSeconds);
  const from = given.from ?? (await statementNow(db));
  const times = upcomingTimes(schedule, { after: from, count: given.count });
  const jitter = given.jitter_seconds ?? 0;
  return {
    schedule: schedule.expression,
    timezone: schedule.timezone,
    description: describeSchedule(schedule.expression),
    from: from.toISOString(),
    jitter_seconds: jitter,
    next: fireTimes(schedule, times, { cron_id: null, jitter_seconds: jitter }),
  };
}

/** A cron's next fire times (the API's CronNextRuns), strictly after `from` when given. */
export async function nextFireTimes(db: Queryable, cronId: string, userId: string, { count, from }: { count: number; from?: Date | null }) {
  const cron = await getCron(db, cronId, userId);
  if (!cron) throw missing('cron');
  const schedule = scheduleOf(cron.schedule, cron.timezone, true);
  // From the next fire: the stored next_run_date, or for a disabled cron what enabling it now
  // would set (null once finished: it fires nothing more).
  const first = shownNextRunDate(cron, await answerClock(db, cron));
  const times = first === null ? [] : upcomingTimes(schedule, { first, after: from ?? null, count, endTime: cron.end_time });
  return {
    cron_id: cron.cron_id,
    schedule: cron.schedule,
    timezone: schedule.timezone,
    description: describeSchedule(cron.schedule),
    enabled: cron.enabled,
    jitter_seconds: cron.jitter_seconds,
    next: fireTimes(schedule, times, { cron_id: cron.cron_id, jitter_seconds: cron.jitter_seconds }),
  };
}

/** A page of a cron's occurrence ledger, newest first (the API's CronOccurrence). */
export async function cronOccurrences(db: Queryable, cronId: string, userId: string, limit: number, offset: number) {
  if (!(await getCron(db, cronId, userId))) throw missing('cron');
  const rows = await listOccurrences(db, cronId, limit, offset);
  return rows.map(toOccurrenceResponse);
}

/** The owner's occurrences scheduled at or after `since`, across its crons, newest first (one list for a chart of them all). */
export async function recentOccurrences(db: Queryable, userId: string, since: Date, limit: number) {
  const rows = await listRecentOccurrences(db, userId, since, limit);
  return rows.map(toOccurrenceResponse);
}
