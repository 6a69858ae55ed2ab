import cronstrue from 'cronstrue';
import { plannedStart } from '../firing/index.ts';
import { parseSchedule } from '../schedule/index.ts';
import type { Schedule } from '../schedule/index.ts';
import { zoneRules } from '../schedule/index.ts';
import { localIso } from './occurrences.ts';

// What a schedule will do, without running it: its next fire times in UTC and in its timezone,
// with the DST cases of docs/scheduling.md point 7 marked, and a description in words (cronstrue).
// Used by POST /runs/crons/preview and GET /runs/crons/{id}/next. Pure: no I/O.

/**
 * The DST case of a fire time:
 * - `skipped`: the wall time the schedule names does not exist that day (clocks go forward); a
 *   fixed-time schedule fires once at the first instant after the gap instead;
 * - `repeated_first` / `repeated_second`: the wall time happens twice that day (clocks go back)
 *   and this is its first / second pass (a fixed-time schedule fires only the first; an
 *   interval schedule fires both).
 */
export type DstCase = 'skipped' | 'repeated_first' | 'repeated_second';

export interface FireTime {
  utc: string;
  /** The same instant as wall-clock time in the schedule's timezone, with its UTC offset. */
  local: string;
  dst: DstCase | null;
  /** The DST case in words (null when none). */
  dst_note: string | null;
  /**
   * When the occurrence will start: utc plus the cron's jitter offset (utc without jitter); null
   * when the offset cannot be known (a preview with jitter: it comes from the cron's id).
   */
  planned_for: string | null;
}

/** Jitter of the fire times: the cron's id (null in a preview, before there is one) and jitter_seconds. */
export interface FireJitter {
  cron_id: string | null;
  jitter_seconds: number;
}

const ALIASES: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** A validated schedule in words ("At 09:00, Monday through Friday"); the expression itself if cronstrue cannot say it. */
export function describeSchedule(expression: string): string {
  const trimmed = expression.trim();
  const expr = ALIASES[trimmed.toLowerCase()] ?? trimmed;
  try {
    return cronstrue.toString(expr, { use24HourTimeFormat: true, throwExceptionOnParseError: true, verbose: false });
  } catch {
    return trimmed;
  }
}

/** Instants the schedule computes with (libs/schedule accepts 1900..9000). */
const MAX_INSTANT = Date.UTC(9000, 0, 1);

/**
 * Up to `count` fire times: `first` (included as is, e.g. a cron's next_run_date) unless it is not
 * after `after`, then the schedule's occurrences strictly after both; none past `endTime`. Stops
 * early (never throws) where the schedule's calendar ends.
 */
export function upcomingTimes(schedule: Schedule, opts: { first?: Date | null; after?: Date | null; count: number; endTime?: Date | null }): Date[] {
  const { first = null, after = null, count, endTime = null } = opts;
  const end = Math.min(endTime?.getTime() ?? Infinity, MAX_INSTANT);
  const out: Date[] = [];
  let cursor: Date | null = after;
  if (first !== null && (after === null || first.getTime() > after.getTime())) {
    if (first.getTime() > end) return out;
    out.push(first);
    cursor = first;
  }
  if (cursor === null) return out;
  while (out.length < count) {
    let next: Date;
    try {
      next = schedule.nextAfter(cursor);
    } catch {
      break;
    }
    if (next.getTime() > end) break;
    out.push(next);
    cursor = next;
  }
  return out.slice(0, count);
}

/** Fire times as the API answers them: UTC, local wall time, the DST case marked, and the planned start. */
export function fireTimes(schedule: Schedule, times: Date[], jitter: FireJitter = { cron_id: null, jitter_seconds: 0 }): FireTime[] {
  return times.map((at) => {
    const mark = dstCase(schedule, at.getTime());
    let planned: string | null = at.toISOString();
    if (jitter.jitter_seconds > 0) planned = jitter.cron_id === null ? null : plannedStart(jitter.cron_id, at, jitter.jitter_seconds).toISOString();
    return { utc: at.toISOString(), local: localIso(at, schedule.timezone), dst: mark?.kind ?? null, dst_note: mark?.note ?? null, planned_for: planned };
  });
}

const DAY = 86_400_000;

/** "2030-03-10" and "02:30" (":15" seconds when there are any) of a wall-clock time held as if UTC. */
const wallDate = (wall: number): string => new Date(wall).toISOString().slice(0, 10);
function wallTime(wall: number): string {
  const iso = new Date(wall).toISOString();
  return iso.slice(17, 19) === '00' ? iso.slice(11, 16) : iso.slice(11, 19);
}

/** Whether the schedule names this wall-clock time (ms, held as if UTC): its expression read in UTC. */
function namesWall(schedule: Schedule, wall: number): boolean {
  const plain = parseSchedule(schedule.expression, { timezone: 'UTC', allowSeconds: schedule.hasSeconds });
  try {
    return plain.nextAfter(new Date(wall - 1)).getTime() === wall;
  } catch {
    return false;
  }
}

/** Whether the schedule fires at instant t (ms). */
function firesAt(schedule: Schedule, t: number): boolean {
  try {
    return schedule.nextAfter(new Date(t - 1)).getTime() === t;
  } catch {
    return false;
  }
}

function dstCase(schedule: Schedule, t: number): { kind: DstCase; note: string } | null {
  const tz = schedule.timezone;
  const zone = zoneRules(tz);
  const prev = zone.previousTransition(t, t - 2 * DAY); // the last change at or before t
  const next = zone.nextTransition(t, t + 2 * DAY); // the first change after t
  if (prev !== null && prev.at === t && prev.after > prev.before && !namesWall(schedule, t + prev.after)) {
    // Fired at the first instant after a spring-forward gap, for wall times inside it.
    const gapStart = t + prev.before;
    const gapEnd = t + prev.after;
    let named = gapStart;
    try {
      named = parseSchedule(schedule.expression, { timezone: 'UTC', allowSeconds: schedule.hasSeconds })
        .nextAfter(new Date(gapStart - 1))
        .getTime();
    } catch {
      // keep the gap's start
    }
    return {
      kind: 'skipped',
      note:
        `${wallTime(named)} does not exist on ${wallDate(named)} in ${tz} (clocks go forward from ${wallTime(gapStart)} to ${wallTime(gapEnd)}): ` +
        `fires once at ${wallTime(gapEnd)}, the first instant after the gap`,
    };
  }
  if (prev !== null && prev.before > prev.after && t < prev.at + (prev.before - prev.after)) {
    const wall = t + prev.after;
    return {
      kind: 'repeated_second',
      note:
        `${wallTime(wall)} happens twice on ${wallDate(wall)} in ${tz} (clocks go back from ${wallTime(prev.at + prev.before)} to ` +
        `${wallTime(prev.at + prev.after)}): ` +
        'this is its second pass',
    };
  }
  if (next !== null && next.before > next.after && t >= next.at - (next.before - next.after)) {
    const wall = t + next.before;
    const twice = firesAt(schedule, t + (next.before - next.after));
    return {
      kind: 'repeated_first',
      note:
        `${wallTime(wall)} happens twice on ${wallDate(wall)} in ${tz} (clocks go back from ${wallTime(next.at + next.before)} to ` +
        `${wallTime(next.at + next.after)}): ` +
        (twice ? 'this is its first pass, and the schedule fires in the second too' : 'this is its first pass, and the schedule fires only in this one'),
    };
  }
  return null;
}
