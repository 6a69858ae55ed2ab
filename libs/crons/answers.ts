import type { Queryable } from '../db/index.ts';
import { parseSchedule } from '../schedule/index.ts';
import { withoutCredentials } from '../webhooks/index.ts';
import { statementNow, toCronResponse } from './repository.ts';
import type { CronResponse } from './repository.ts';
import type { CronRow } from './types.ts';

// A cron as the API shows it: a whole Cron, or one reduced to the selected fields.

/**
 * The next_run_date a Cron answer shows: the cron's next occurrence that has not reached its
 * instant. One fired ahead (CRON_LOOKAHEAD_MS) and still waiting for it comes first: the stored
 * next_run_date is then already past it. Otherwise, an enabled cron: the stored one (the occurrence the
 * scheduler fires next; null once finished). A disabled cron fires nothing, so it shows when it
 * would fire if enabled now: the stored date while it is still ahead, else the schedule's next
 * occurrence after now (exactly what enabling computes); null when finished or past end_time.
 */
export function shownNextRunDate(row: CronRow, now: Date): Date | null {
  if (row.ahead_next) return row.ahead_next;
  if (row.enabled || row.finished_at !== null || row.next_run_date === null) return row.next_run_date;
  if (row.next_run_date.getTime() > now.getTime()) return row.next_run_date;
  let next: Date;
  try {
    const from = row.fired_through && row.fired_through.getTime() > now.getTime() ? row.fired_through : now;
    next = parseSchedule(row.schedule, { timezone: row.timezone, allowSeconds: true }).nextAfter(from);
  } catch {
    return row.next_run_date;
  }
  return row.end_time && next.getTime() > row.end_time.getTime() ? null : next;
}

/** A stored cron as the API answers it: next_run_date as above, a webhook without its credentials. */
export function cronAnswer(row: CronRow, now: Date): CronResponse {
  const answer = toCronResponse(row);
  const shown = shownNextRunDate(row, now);
  answer.next_run_date = shown ? shown.toISOString() : null;
  if (typeof answer.payload.webhook === 'string') answer.payload = { ...answer.payload, webhook: withoutCredentials(answer.payload.webhook) };
  return answer;
}

/** The clock a single Cron answer needs (only a disabled cron's next_run_date reads it). */
export const answerClock = async (db: Queryable, row: CronRow): Promise<Date> => (row.enabled ? new Date() : statementNow(db));

/** A Cron reduced to the selected fields ("now" is the database's time of the search); null: every field. */
export function selectedCronFields(row: CronRow, select: readonly string[] | null, now: Date): Record<string, unknown> {
  const full: Record<string, unknown> = { ...cronAnswer(row, now) };
  if (select === null) return full;
  const out: Record<string, unknown> = {};
  for (const field of select) out[field] = field === 'now' ? now.toISOString() : full[field];
  return out;
}
