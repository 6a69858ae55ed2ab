import type { CronExpression } from 'cron-parser';

/**
 * A cron expression compiled to lookup tables, matched against *wall-clock* time.
 *
 * Wall-clock times are encoded as if they were UTC instants (the local date and
 * time fields read with getUTC*), so this part knows nothing about time zones or
 * DST; schedule.ts maps wall-clock times to real instants.
 *
 * The field values and the day-of-month / day-of-week rules are taken from
 * cron-parser's parsed fields and mirror `CronExpression#matchDayOfMonth` exactly
 * (both restricted: OR; `L`; `nL`; `n#k`), which test/schedule.test.ts checks by
 * comparing against cron-parser's own `next()` in UTC. We do not use cron-parser's
 * iteration itself: it is slower (Luxon) and its DST handling is wrong (see
 * schedule.ts).
 */
export interface WallMatcher {
  /** The first matching wall-clock time strictly after `wall` (whole seconds). */
  nextWall(wall: number): number;
  /** True when the hour field allows all 24 hours (an "interval" schedule for DST purposes). */
  readonly everyHour: boolean;
}

/** A search that finds nothing in this many years of wall-clock time means the expression never matches. */
export const SEARCH_YEARS = 400;

const DAY = 86_400_000;

/** next[v] = the smallest allowed value >= v, or -1. */
function nextTable(values: readonly (number | string)[], size: number): Int16Array {
  const allowed = new Uint8Array(size + 1);
  for (const v of values) if (typeof v === 'number' && v >= 0 && v < size) allowed[v] = 1;
  const next = new Int16Array(size + 1);
  next[size] = -1;
  for (let v = size - 1; v >= 0; v--) next[v] = allowed[v] ? v : next[v + 1];
  return next;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

export function compileMatcher(expression: CronExpression): WallMatcher {
  const f = expression.fields;
  const secNext = nextTable(f.second.values, 60);
  const minNext = nextTable(f.minute.values, 60);
  const hourNext = nextTable(f.hour.values, 24);
  const monthNext = nextTable(f.month.values, 13);
  const S0 = secNext[0];
  const M0 = minNext[0];
  const H0 = hourNext[0];
  const MO0 = monthNext[1];

  const domOk = new Uint8Array(32);
  for (const v of f.dayOfMonth.values) if (typeof v === 'number') domOk[v] = 1;
  const domLast = f.dayOfMonth.hasLastChar;
  const domRestricted = !f.dayOfMonth.isWildcard;

  const dowOk = new Uint8Array(8);
  const dowLastOk = new Uint8Array(7);
  for (const v of f.dayOfWeek.values) {
    if (typeof v === 'number') dowOk[v] = 1;
  }
  const dowLast = f.dayOfWeek.hasLastChar;
  if (dowLast) {
    // cron-parser: `parseInt(String(value).charAt(0)) % 7` over all values when any has L.
    for (const v of f.dayOfWeek.values) dowLastOk[Number.parseInt(String(v).charAt(0), 10) % 7] = 1;
  }
  const nth = f.dayOfWeek.nthDay;
  const dowRestricted = !f.dayOfWeek.isWildcard;
  const everyHour = f.hour.values.length === 24;

  function dayOk(year: number, month: number, day: number, dim: number): boolean {
    const dow = (((Math.floor(Date.UTC(year, month - 1, day) / DAY) + 4) % 7) + 7) % 7;
    const matchedDom = domOk[day] === 1 || (domLast && day === dim);
    const matchedDow = (dowOk[dow] === 1 && (nth <= 0 || Math.ceil(day / 7) === nth)) || (dowLast && day > dim - 7 && dowLastOk[dow] === 1);
    if (domRestricted && dowRestricted) return matchedDom || matchedDow;
    if (dowRestricted) return matchedDow;
    return matchedDom;
  }

  function nextWall(wall: number): number {
    const start = new Date(Math.floor(wall / 1000) * 1000 + 1000);
    let year = start.getUTCFullYear();
    let month = start.getUTCMonth() + 1;
    let day = start.getUTCDate();
    let hour = start.getUTCHours();
    let minute = start.getUTCMinutes();
    let second = start.getUTCSeconds();
    const lastYear = year + SEARCH_YEARS;
    for (;;) {
      if (year > lastYear) {
        throw new RangeError(`cron expression "${expression.stringify(true)}" matches no time within ${SEARCH_YEARS} years`);
      }
      const mo = monthNext[month];
      if (mo !== month) {
        if (mo === -1) {
          year++;
          month = MO0;
        } else {
          month = mo;
        }
        day = 1;
        hour = H0;
        minute = M0;
        second = S0;
        continue;
      }
      const dim = daysInMonth(year, month);
      if (day > dim) {
        month++;
        if (month > 12) {
          month = 1;
          year++;
        }
        day = 1;
        hour = H0;
        minute = M0;
        second = S0;
        continue;
      }
      if (!dayOk(year, month, day, dim)) {
        day++;
        hour = H0;
        minute = M0;
        second = S0;
        continue;
      }
      const h = hourNext[hour];
      if (h !== hour) {
        if (h === -1) {
          day++;
          hour = H0;
          minute = M0;
          second = S0;
          continue;
        }
        hour = h;
        minute = M0;
        second = S0;
      }
      const m = minNext[minute];
      if (m !== minute) {
        if (m === -1) {
          hour++;
          minute = M0;
          second = S0;
          if (hour > 23) {
            day++;
            hour = H0;
          }
          continue;
        }
        minute = m;
        second = S0;
      }
      const s = secNext[second];
      if (s !== second) {
        if (s === -1) {
          minute++;
          second = S0;
          if (minute > 59) {
            hour++;
            minute = M0;
            if (hour > 23) {
              day++;
              hour = H0;
            }
          }
          continue;
        }
        second = s;
      }
      return Date.UTC(year, month - 1, day, hour, minute, second);
    }
  }

  return { nextWall, everyHour };
}
