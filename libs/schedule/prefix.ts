import { ScheduleError } from './errors.ts';
import { validateTimezone } from './timezone.ts';

/** A schedule with its time-zone prefix taken off. */
export interface PrefixedSchedule {
  /** The cron expression without the prefix, trimmed. */
  readonly expression: string;
  /** The zone the prefix named, as written (validated); null without a prefix. */
  readonly timezone: string | null;
}

const PREFIX = /^\s*(CRON_TZ|TZ)=(\S*)(?:\s+([\s\S]*))?$/;

/**
 * Splits a `CRON_TZ=<zone> ` or `TZ=<zone> ` prefix off a schedule, as Vixie cron and
 * robfig/cron read it: the only way the LangGraph SDK 2.x passes a time zone, since its
 * crons.create sends no `timezone` field. A schedule without a prefix comes back as given.
 * @throws {ScheduleError} with field "schedule" for an empty or unknown zone, or no expression after it.
 */
export function splitTimezonePrefix(schedule: string): PrefixedSchedule {
  const m = PREFIX.exec(schedule);
  if (m === null) return { expression: schedule, timezone: null };
  const [, name, zone, rest = ''] = m;
  if (zone === '') {
    throw new ScheduleError('schedule', schedule, `${name}= names no time zone: write it as "${name}=Europe/Paris 0 9 * * *"`);
  }
  if (rest.trim() === '') {
    throw new ScheduleError('schedule', schedule, `${name}=${zone} is followed by no cron expression: write it as "${name}=${zone} 0 9 * * *"`);
  }
  try {
    validateTimezone(zone);
  } catch (err) {
    if (err instanceof ScheduleError) throw new ScheduleError('schedule', schedule, `the ${name}= prefix: ${err.message}`);
    throw err;
  }
  return { expression: rest.trim(), timezone: zone };
}
