import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CronExpressionParser } from 'cron-parser';
import { parseSchedule, ScheduleError, validateTimezone } from '../libs/schedule/index.ts';
import type { Schedule } from '../libs/schedule/index.ts';
import { ZoneRules } from '../libs/schedule/timezone.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;

// ---------------------------------------------------------------------------
// Independent helpers (straight from Intl, not from libs/schedule)

const formats = new Map<string, Intl.DateTimeFormat>();
/** Local wall-clock time of instant t in tz, encoded as a UTC timestamp. */
function wallOf(tz: string, t: number): number {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(t)) p[part.type] = Number(part.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
}

function offsetMinutes(tz: string, t: number): number {
  return (wallOf(tz, Math.floor(t / 1000) * 1000) - Math.floor(t / 1000) * 1000) / MINUTE;
}

/** First instant (minute precision) whose local date is on or after y-m-d. */
function localDayStart(tz: string, y: number, m: number, d: number): number {
  const day = Date.UTC(y, m - 1, d);
  let lo = day - 16 * HOUR; // local date still before
  let hi = day + 16 * HOUR; // local date on or after
  while (hi - lo > MINUTE) {
    const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
    if (wallOf(tz, mid) >= day) hi = mid;
    else lo = mid;
  }
  return hi;
}

function localDay(tz: string, y: number, m: number, d: number): { start: number; end: number } {
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  return {
    start: localDayStart(tz, y, m, d),
    end: localDayStart(tz, next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate()),
  };
}

/** Occurrences within the local calendar day, by iterating nextAfter from local midnight - 1 ms. */
function occurrencesOnLocalDay(schedule: Schedule, y: number, m: number, d: number): number[] {
  const { start, end } = localDay(schedule.timezone, y, m, d);
  const out: number[] = [];
  let t = new Date(start - 1);
  for (;;) {
    t = schedule.nextAfter(t);
    if (t.getTime() >= end) return out;
    out.push(t.getTime());
  }
}

function iso(ts: number[]): string[] {
  return ts.map((t) => new Date(t).toISOString());
}

function sched(expr: string, timezone: string | null = 'UTC', allowSeconds = false): Schedule {
  return parseSchedule(expr, { timezone, allowSeconds });
}

function assertStrictlyIncreasing(ts: number[]): void {
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i] > ts[i - 1], `not increasing at ${i}: ${iso(ts.slice(i - 1, i + 1)).join(',')}`);
}

function assertAllApart(ts: number[], step: number): void {
  for (let i = 1; i < ts.length; i++) {
    assert.equal(ts[i] - ts[i - 1], step, `gap at ${new Date(ts[i - 1]).toISOString()} -> ${new Date(ts[i]).toISOString()}`);
  }
}

function assertScheduleError(fn: () => unknown, field: 'schedule' | 'timezone', message: RegExp | string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ScheduleError, `expected ScheduleError, got ${String(error)}`);
    assert.equal(error.field, field);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------

describe('validateTimezone', () => {
  test('accepts IANA names', () => {
    for (const tz of ['UTC', 'America/New_York', 'Australia/Lord_Howe', 'Europe/London', 'Etc/GMT+5']) {
      assert.equal(validateTimezone(tz), tz);
    }
  });

  test('rejects empty, unknown names and offsets', () => {
    assertScheduleError(() => validateTimezone(''), 'timezone', /^invalid timezone "": expected an IANA time zone name/);
    assertScheduleError(
      () => validateTimezone('Not/AZone'),
      'timezone',
      'invalid timezone "Not/AZone": not a known IANA time zone name (e.g. "UTC", "America/New_York")',
    );
    assertScheduleError(() => validateTimezone('+05:00'), 'timezone', /UTC offsets are not accepted/);
    assertScheduleError(() => validateTimezone(' UTC'), 'timezone', /^invalid timezone " UTC"/);
  });

  test('parseSchedule validates the timezone and defaults to UTC', () => {
    assertScheduleError(() => sched('0 0 * * *', 'Not/AZone'), 'timezone', /^invalid timezone "Not\/AZone"/);
    assertScheduleError(() => sched('0 0 * * *', ''), 'timezone', /^invalid timezone ""/);
    assert.equal(sched('0 0 * * *', null).timezone, 'UTC');
    assert.equal(parseSchedule('0 0 * * *', { allowSeconds: false }).timezone, 'UTC');
    assert.equal(sched('0 0 * * *', 'Australia/Lord_Howe').timezone, 'Australia/Lord_Howe');
  });
});

describe('parseSchedule validation', () => {
  const fields5 = '5 fields (minute hour day-of-month month day-of-week)';

  test('rejects the empty expression', () => {
    assertScheduleError(() => sched(''), 'schedule', `invalid schedule "": the expression is empty; expected ${fields5} or an alias such as @daily`);
    assertScheduleError(() => sched('   '), 'schedule', /^invalid schedule "": the expression is empty/);
  });

  test('rejects wrong field counts with the count', () => {
    assertScheduleError(() => sched('* * * *'), 'schedule', `invalid schedule "* * * *": expected ${fields5}, got 4 fields`);
    assertScheduleError(() => sched('0 0 * * * * *'), 'schedule', `invalid schedule "0 0 * * * * *": expected ${fields5}, got 7 fields`);
    assertScheduleError(
      () => sched('0 0 * * * * *', 'UTC', true),
      'schedule',
      `invalid schedule "0 0 * * * * *": expected ${fields5}, or 6 fields with seconds first, got 7 fields`,
    );
    assertScheduleError(() => sched('not a cron'), 'schedule', `invalid schedule "not a cron": expected ${fields5}, got 3 fields`);
    assertScheduleError(() => sched('5'), 'schedule', /got 1 field$/);
    assertScheduleError(() => sched('0 12 * *'), 'schedule', /got 4 fields$/);
  });

  test("passes cron-parser's reason through", () => {
    assertScheduleError(
      () => sched('61 * * * *'),
      'schedule',
      'invalid schedule "61 * * * *": Constraint error, got value 61 expected range 0-59 (in the minute field "61")',
    );
    assertScheduleError(
      () => sched('0 24 * * *'),
      'schedule',
      /^invalid schedule "0 24 \* \* \*": Constraint error, got value 24 expected range 0-23 \(in the hour field "24"\)$/,
    );
    assertScheduleError(() => sched('0 0 * 13 *'), 'schedule', /Constraint error, got value 13 expected range 1-12 \(in the month field "13"\)/);
    assertScheduleError(() => sched('*/0 * * * *'), 'schedule', /^invalid schedule "\*\/0 \* \* \* \*": Constraint error, cannot repeat at every 0 time\./);
    assertScheduleError(() => sched('0 0 1W * *'), 'schedule', /^invalid schedule "0 0 1W \* \*": Invalid characters/);
    assertScheduleError(() => sched('0 0 31 2 *'), 'schedule', /^invalid schedule "0 0 31 2 \*": Invalid explicit day of month definition/);
  });

  test('6-field schedules need allowSeconds', () => {
    assertScheduleError(
      () => sched('*/10 * * * * *'),
      'schedule',
      /^invalid schedule "\*\/10 \* \* \* \* \*": 6-field seconds schedules are disabled.*CRON_ALLOW_SECONDS_SCHEDULE/,
    );
    const s = sched('*/10 * * * * *', 'UTC', true);
    assert.equal(s.hasSeconds, true);
    assert.equal(s.nextAfter(new Date('2025-01-01T00:00:05Z')).toISOString(), '2025-01-01T00:00:10.000Z');
    assert.equal(s.nextAfter(new Date('2025-01-01T00:00:10Z')).toISOString(), '2025-01-01T00:00:20.000Z');
    assert.equal(sched('*/5 * * * *').hasSeconds, false);
    // DST rules apply to seconds schedules too
    assert.equal(sched('30 30 2 * * *', 'America/New_York', true).nextAfter(new Date('2025-03-09T05:00:00Z')).toISOString(), '2025-03-09T07:00:00.000Z');
    const everyTen = sched('*/10 * * * * *', 'America/New_York', true).occurrencesBetween(
      new Date('2025-03-09T06:59:30Z'),
      new Date('2025-03-09T07:00:30Z'),
      100,
    );
    assert.deepEqual(
      everyTen.dates.map((d) => d.toISOString().slice(11, 19)),
      ['06:59:40', '06:59:50', '07:00:00', '07:00:10', '07:00:20', '07:00:30'],
    );
  });

  test('aliases', () => {
    const after = new Date('2025-05-14T10:20:00Z'); // a Wednesday
    const expect: Record<string, string> = {
      '@yearly': '2026-01-01T00:00:00.000Z',
      '@annually': '2026-01-01T00:00:00.000Z',
      '@monthly': '2025-06-01T00:00:00.000Z',
      '@weekly': '2025-05-18T00:00:00.000Z',
      '@daily': '2025-05-15T00:00:00.000Z',
      '@midnight': '2025-05-15T00:00:00.000Z',
      '@hourly': '2025-05-14T11:00:00.000Z',
      '@DAILY': '2025-05-15T00:00:00.000Z',
    };
    for (const [alias, next] of Object.entries(expect)) {
      const s = sched(alias);
      assert.equal(s.expression, alias);
      assert.equal(s.hasSeconds, false);
      assert.equal(s.nextAfter(after).toISOString(), next, alias);
    }
    assert.equal(sched('@daily', 'America/New_York').nextAfter(after).toISOString(), '2025-05-15T04:00:00.000Z');
    assertScheduleError(
      () => sched('@reboot'),
      'schedule',
      /^invalid schedule "@reboot": unsupported alias @reboot; supported aliases are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly$/,
    );
    assertScheduleError(() => sched('@every 5m'), 'schedule', /unsupported alias/);
  });

  test('rejects hashed (H) values, which are random per process', () => {
    assertScheduleError(() => sched('H * * * *'), 'schedule', /hashed values \(H\) are not supported \(in the minute field "H"\)/);
    assertScheduleError(() => sched('0 0 * * H'), 'schedule', /hashed values/);
    // "thu" contains an h and is fine
    assert.equal(sched('0 0 * * thu').nextAfter(new Date('2025-05-14T00:00:00Z')).toISOString(), '2025-05-15T00:00:00.000Z');
  });

  test('trims, and accepts the usual syntax', () => {
    assert.equal(sched('  */5  * * * *  ').expression, '*/5  * * * *');
    for (const e of ['0 9 * * 1-5', '0 0 L * *', '0 0 * * 5L', '0 0 * * 1#2', '0 0 ? * MON-FRI', '0 0 1 jan-mar *', '0 0 29 2 *', '0,30 8-18/2 1,15 * *']) {
      sched(e);
    }
  });

  test('a value listed twice is accepted (cron-parser alone refuses it)', () => {
    assert.deepEqual(
      sched('0 0 * * 0,7')
        .next(2, new Date('2025-01-01T00:00:00Z'))
        .map((d) => d.toISOString()),
      ['2025-01-05T00:00:00.000Z', '2025-01-12T00:00:00.000Z'],
    );
    assert.equal(
      sched('*/20,40 * * * *')
        .next(4, new Date('2025-01-01T00:00:00Z'))
        .map((d) => d.toISOString().slice(14, 16))
        .join(','),
      '20,40,00,20',
    );
    assertScheduleError(
      () => sched('0 0 31 4 *'),
      'schedule',
      'invalid schedule "0 0 31 4 *": Invalid explicit day of month definition (the day of month never occurs in the given months)',
    );
  });

  test('is cached', () => {
    assert.equal(sched('*/7 * * * *', 'Europe/London'), sched('*/7 * * * *', 'Europe/London'));
    assert.notEqual(sched('*/7 * * * *', 'Europe/London'), sched('*/7 * * * *', 'UTC'));
  });
});

describe('nextAfter / next / occurrencesBetween', () => {
  test('nextAfter is strictly after', () => {
    const s = sched('*/5 * * * *');
    assert.equal(s.nextAfter(new Date('2025-01-01T00:05:00.000Z')).toISOString(), '2025-01-01T00:10:00.000Z');
    assert.equal(s.nextAfter(new Date('2025-01-01T00:04:59.999Z')).toISOString(), '2025-01-01T00:05:00.000Z');
    assert.equal(s.nextAfter(new Date('2025-01-01T00:05:00.001Z')).toISOString(), '2025-01-01T00:10:00.000Z');
    const ny = sched('30 9 * * *', 'America/New_York');
    assert.equal(ny.nextAfter(new Date('2025-07-01T13:30:00Z')).toISOString(), '2025-07-02T13:30:00.000Z');
  });

  test('nextAfter rejects invalid dates', () => {
    assert.throws(() => sched('* * * * *').nextAfter(new Date(Number.NaN)), RangeError);
  });

  test('next(count, after)', () => {
    assert.deepEqual(
      iso(
        sched('0 */6 * * *')
          .next(3, new Date('2025-01-01T05:00:00Z'))
          .map((d) => d.getTime()),
      ),
      ['2025-01-01T06:00:00.000Z', '2025-01-01T12:00:00.000Z', '2025-01-01T18:00:00.000Z'],
    );
    assert.deepEqual(sched('* * * * *').next(0, new Date()), []);
  });

  test('occurrencesBetween: (after, until], bounded by max', () => {
    const s = sched('0 * * * *');
    const after = new Date('2025-01-01T00:00:00Z');
    const until = new Date('2025-01-01T05:00:00Z');
    const all = s.occurrencesBetween(after, until, 100);
    assert.equal(all.truncated, false);
    assert.deepEqual(
      all.dates.map((d) => d.toISOString()),
      ['01', '02', '03', '04', '05'].map((h) => `2025-01-01T${h}:00:00.000Z`),
    );
    const some = s.occurrencesBetween(after, until, 2);
    assert.equal(some.truncated, true);
    assert.deepEqual(
      some.dates.map((d) => d.toISOString()),
      ['2025-01-01T01:00:00.000Z', '2025-01-01T02:00:00.000Z'],
    );
    const exact = s.occurrencesBetween(after, until, 5);
    assert.equal(exact.truncated, false);
    assert.equal(exact.dates.length, 5);
    const none = s.occurrencesBetween(after, new Date('2025-01-01T00:59:59Z'), 10);
    assert.deepEqual(none, { dates: [], truncated: false });
    assert.deepEqual(s.occurrencesBetween(after, until, 0), { dates: [], truncated: true });
  });

  test('day-of-month and day-of-week both restricted: either matches (OR, as cron-parser and Vixie cron do)', () => {
    // 2025-06-13 is a Friday; 2025-07-13 a Sunday.
    const s = sched('0 0 13 * 5');
    const dates = s.next(8, new Date('2025-06-01T00:00:00Z')).map((d) => d.toISOString().slice(0, 10));
    assert.deepEqual(dates, ['2025-06-06', '2025-06-13', '2025-06-20', '2025-06-27', '2025-07-04', '2025-07-11', '2025-07-13', '2025-07-18']);
  });

  test('L, nL, n#k', () => {
    assert.deepEqual(
      iso(
        sched('0 0 L * *')
          .next(3, new Date('2024-01-15T00:00:00Z'))
          .map((d) => d.getTime()),
      ),
      ['2024-01-31T00:00:00.000Z', '2024-02-29T00:00:00.000Z', '2024-03-31T00:00:00.000Z'],
    );
    // last Friday; second Monday
    assert.equal(sched('0 0 * * 5L').nextAfter(new Date('2025-05-01T00:00:00Z')).toISOString(), '2025-05-30T00:00:00.000Z');
    assert.equal(sched('0 0 * * 1#2').nextAfter(new Date('2025-05-01T00:00:00Z')).toISOString(), '2025-05-12T00:00:00.000Z');
    assert.equal(sched('0 0 29 2 *').nextAfter(new Date('2025-01-01T00:00:00Z')).toISOString(), '2028-02-29T00:00:00.000Z');
  });
});

describe('DST: America/New_York', () => {
  const tz = 'America/New_York';

  test('spring forward: 02:30 does not exist on 2025-03-09 and fires once at 03:00 EDT', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('30 2 * * *', tz), 2025, 3, 9)), ['2025-03-09T07:00:00.000Z']);
    // the days around are normal
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('30 2 * * *', tz), 2025, 3, 8)), ['2025-03-08T07:30:00.000Z']);
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('30 2 * * *', tz), 2025, 3, 10)), ['2025-03-10T06:30:00.000Z']);
  });

  test('fall back: 01:30 happens twice on 2025-11-02 and fires once, at the first (EDT)', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('30 1 * * *', tz), 2025, 11, 2)), ['2025-11-02T05:30:00.000Z']);
    // asking from inside the second pass does not produce the second 01:30
    assert.equal(sched('30 1 * * *', tz).nextAfter(new Date('2025-11-02T06:10:00Z')).toISOString(), '2025-11-03T06:30:00.000Z');
    assert.equal(sched('30 1 * * *', tz).nextAfter(new Date('2025-11-02T05:30:00Z')).toISOString(), '2025-11-03T06:30:00.000Z');
  });

  test('hourly fires at every real hour: 25 on 2025-11-02, 23 on 2025-03-09', () => {
    const fall = occurrencesOnLocalDay(sched('0 * * * *', tz), 2025, 11, 2);
    assert.equal(fall.length, 25);
    assertAllApart(fall, HOUR);
    const spring = occurrencesOnLocalDay(sched('0 * * * *', tz), 2025, 3, 9);
    assert.equal(spring.length, 23);
    assertAllApart(spring, HOUR);
  });

  test('*/15 fires at every real quarter-hour on both DST days', () => {
    for (const [y, m, d] of [
      [2025, 3, 9],
      [2025, 11, 2],
    ] as const) {
      const { start, end } = localDay(tz, y, m, d);
      const got = occurrencesOnLocalDay(sched('*/15 * * * *', tz), y, m, d);
      assert.equal(got.length, (end - start) / (15 * MINUTE));
      assert.equal(got[0], start);
      assertAllApart(got, 15 * MINUTE);
    }
  });

  test('several fixed times inside the gap collapse into one firing', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('15,45 2 * * *', tz), 2025, 3, 9)), ['2025-03-09T07:00:00.000Z']);
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('*/15 2 * * *', tz), 2025, 3, 9)), ['2025-03-09T07:00:00.000Z']);
    // a fixed-hour schedule with a minute step fires in the first pass of a repeated hour only
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('*/15 1 * * *', tz), 2025, 11, 2)), [
      '2025-11-02T05:00:00.000Z',
      '2025-11-02T05:15:00.000Z',
      '2025-11-02T05:30:00.000Z',
      '2025-11-02T05:45:00.000Z',
    ]);
  });
});

describe('DST: Europe/London', () => {
  const tz = 'Europe/London';

  test('2025-03-30: 01:30 does not exist, fires once at 02:00 BST; hourly 23', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('30 1 * * *', tz), 2025, 3, 30)), ['2025-03-30T01:00:00.000Z']);
    const hourly = occurrencesOnLocalDay(sched('0 * * * *', tz), 2025, 3, 30);
    assert.equal(hourly.length, 23);
    assertAllApart(hourly, HOUR);
  });

  test('2025-10-26: 01:30 happens twice, fires once at 00:30Z (BST); hourly 25', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('30 1 * * *', tz), 2025, 10, 26)), ['2025-10-26T00:30:00.000Z']);
    const hourly = occurrencesOnLocalDay(sched('0 * * * *', tz), 2025, 10, 26);
    assert.equal(hourly.length, 25);
    assertAllApart(hourly, HOUR);
  });
});

describe('DST: Australia/Lord_Howe (30-minute shift)', () => {
  const tz = 'Australia/Lord_Howe';

  test('the zone facts, checked with Intl', () => {
    // DST ends 2025-04-06 02:00 local (+11:00) -> 01:30 (+10:30), i.e. at 2025-04-05T15:00Z
    assert.equal(offsetMinutes(tz, Date.parse('2025-04-05T14:59:59Z')), 660);
    assert.equal(offsetMinutes(tz, Date.parse('2025-04-05T15:00:00Z')), 630);
    // DST starts 2025-10-05 02:00 local (+10:30) -> 02:30 (+11:00), i.e. at 2025-10-04T15:30Z
    assert.equal(offsetMinutes(tz, Date.parse('2025-10-04T15:29:59Z')), 630);
    assert.equal(offsetMinutes(tz, Date.parse('2025-10-04T15:30:00Z')), 660);
    const april = localDay(tz, 2025, 4, 6);
    assert.equal((april.end - april.start) / HOUR, 24.5);
    const october = localDay(tz, 2025, 10, 5);
    assert.equal((october.end - october.start) / HOUR, 23.5);
  });

  test('2025-10-05: 02:15 does not exist, fires once at 02:30 local (+11)', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('15 2 * * *', tz), 2025, 10, 5)), ['2025-10-04T15:30:00.000Z']);
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('0,30 2 * * *', tz), 2025, 10, 5)), ['2025-10-04T15:30:00.000Z']);
  });

  test('2025-04-06: 01:45 happens twice, fires once at the first (+11)', () => {
    assert.deepEqual(iso(occurrencesOnLocalDay(sched('45 1 * * *', tz), 2025, 4, 6)), ['2025-04-05T14:45:00.000Z']);
  });

  test('*/15 fires at every real quarter-hour: 94 on 2025-10-05 (23.5 h), 98 on 2025-04-06 (24.5 h)', () => {
    for (const [y, m, d, expected] of [
      [2025, 10, 5, 94],
      [2025, 4, 6, 98],
    ] as const) {
      const { start, end } = localDay(tz, y, m, d);
      const got = occurrencesOnLocalDay(sched('*/15 * * * *', tz), y, m, d);
      assert.equal(got.length, (end - start) / (15 * MINUTE));
      assert.equal(got.length, expected);
      assertStrictlyIncreasing(got);
      assert.equal(new Set(got).size, got.length);
      assertAllApart(got, 15 * MINUTE);
    }
  });

  test('hourly: 23 on 2025-10-05 (02:00 does not exist), 24 on 2025-04-06 (no repeated :00)', () => {
    const spring = occurrencesOnLocalDay(sched('0 * * * *', tz), 2025, 10, 5);
    assert.equal(spring.length, 23);
    assertStrictlyIncreasing(spring);
    const fall = occurrencesOnLocalDay(sched('0 * * * *', tz), 2025, 4, 6);
    assert.equal(fall.length, 24);
    assertStrictlyIncreasing(fall);
  });
});

// ---------------------------------------------------------------------------
// Brute-force oracle: walk real time minute by minute and apply the DST rules
// literally, with cron-parser's includesDate (in UTC, on the wall-clock time) as
// the matcher and Intl for wall-clock times.

interface OracleWindow {
  from: number;
  to: number;
  /** Real instants, one a minute, from 6 h before `from` to `to`. */
  times: number[];
  walls: number[];
  /** Wall-clock time one minute before times[0]. */
  wallBefore: number;
}

function oracleWindow(tz: string, from: number, to: number): OracleWindow {
  const warmup = from - 6 * HOUR;
  const times: number[] = [];
  const walls: number[] = [];
  for (let t = warmup; t <= to; t += MINUTE) {
    times.push(t);
    walls.push(wallOf(tz, t));
  }
  return { from, to, times, walls, wallBefore: wallOf(tz, warmup - MINUTE) };
}

/** Occurrences in (from, to]. */
function oracle(expr: string, w: OracleWindow): number[] {
  assert.equal(expr.trim().split(/\s+/).length, 5);
  const parsed = CronExpressionParser.parse(`0 ${expr}`, { tz: 'UTC' });
  const matches = (wall: number) => parsed.includesDate(new Date(wall));
  const interval = parsed.fields.hour.values.length === 24;
  let maxWall = w.wallBefore;
  let previousWall = w.wallBefore;
  const out: number[] = [];
  for (let i = 0; i < w.times.length; i++) {
    const t = w.times[i];
    const wall = w.walls[i];
    // a real instant fires when its wall time matches, unless a fixed-time schedule already had this wall time
    let fires = matches(wall) && (interval || wall > maxWall);
    // spring forward: a fixed-time schedule fires at the first instant after the gap for any matching skipped time
    if (!interval && wall - previousWall > MINUTE) {
      for (let skipped = previousWall + MINUTE; skipped < wall; skipped += MINUTE) if (matches(skipped)) fires = true;
    }
    if (fires && t > w.from) out.push(t);
    maxWall = Math.max(maxWall, wall);
    previousWall = wall;
  }
  return out;
}

function iterate(s: Schedule, from: number, to: number): number[] {
  const out: number[] = [];
  let t = new Date(from);
  for (;;) {
    t = s.nextAfter(t);
    if (t.getTime() > to) return out;
    out.push(t.getTime());
  }
}

/** Instants of offset changes in [from, to), found with Intl at minute precision. */
function transitions(tz: string, from: number, to: number): number[] {
  const out: number[] = [];
  let previous = offsetMinutes(tz, from);
  for (let day = from; day < to; day += 86_400_000) {
    const o = offsetMinutes(tz, day + 86_400_000);
    if (o !== previous) {
      let lo = day;
      let hi = day + 86_400_000;
      while (hi - lo > MINUTE) {
        const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
        if (offsetMinutes(tz, mid) === previous) lo = mid;
        else hi = mid;
      }
      out.push(hi);
      previous = o;
    }
  }
  return out;
}

describe('DST: agrees with a brute-force oracle around every 2025 transition', () => {
  const zones = [
    'America/New_York',
    'Europe/London',
    'Australia/Lord_Howe',
    'America/Santiago', // changes at local midnight
    'America/Havana', // changes at local midnight
    'Pacific/Chatham', // +12:45 / +13:45, changes at 02:45
    'Africa/Casablanca', // goes back an hour around Ramadan
    'Europe/Dublin',
    'Asia/Tokyo', // no DST
  ];
  const expressions = [
    '30 2 * * *',
    '30 1 * * *',
    '0 * * * *',
    '*/15 * * * *',
    '30 * * * *',
    '*/15 1 * * *',
    '*/15 2 * * *',
    '0 */2 * * *',
    '15,45 2 * * *',
    '0 0 * * *',
    '30 0 * * *',
    '59 23 * * *',
    '0 1-3 * * *',
    '45 2 * * *',
    '* 2 * * *',
    '*/7 * * * *',
  ];
  for (const tz of zones) {
    test(tz, () => {
      const year = [Date.UTC(2025, 0, 1), Date.UTC(2026, 0, 1)];
      let windows = transitions(tz, year[0], year[1]).map((t) => [t - 30 * HOUR, t + 30 * HOUR]);
      if (windows.length === 0) windows = [[Date.UTC(2025, 5, 1), Date.UTC(2025, 5, 3)]];
      for (const [from, to] of windows) {
        const window = oracleWindow(tz, from, to);
        for (const expr of expressions) {
          const s = sched(expr, tz);
          const expected = oracle(expr, window);
          const label = `${expr} in ${tz} around ${new Date(from + 30 * HOUR).toISOString()}`;
          assert.deepEqual(iso(iterate(s, from, to)), iso(expected), label);
          // and from arbitrary starting points, e.g. inside a repeated hour
          for (let start = from; start < to; start += 13 * MINUTE + 7_000) {
            const want = expected.find((t) => t > start);
            if (want === undefined) break;
            assert.equal(s.nextAfter(new Date(start)).toISOString(), new Date(want).toISOString(), `${label}, nextAfter ${new Date(start).toISOString()}`);
          }
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------
// The wall-clock matcher against cron-parser's own next() in UTC (no DST there).

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('matcher agrees with cron-parser in UTC', () => {
  test('random expressions', () => {
    const rand = prng(42);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const generic = (lo: number, hi: number): string => {
      switch (int(0, 5)) {
        case 0:
          return '*';
        case 1:
          return String(int(lo, hi));
        case 2: {
          const a = int(lo, hi);
          return `${a}-${int(a, hi)}`;
        }
        case 3:
          return `*/${int(1, Math.max(1, Math.floor((hi - lo) / 2)))}`;
        case 4: {
          const a = int(lo, hi);
          return `${a}-${int(a, hi)}/${int(1, 5)}`;
        }
        default: {
          const set = new Set<number>();
          for (let i = int(2, 4); i > 0; i--) set.add(int(lo, hi));
          return [...set].join(',');
        }
      }
    };
    const dom = () => (rand() < 0.2 ? pick(['L', '?', 'L,15', '1,L', '29', '31', '30']) : generic(1, 31));
    const dow = () => (rand() < 0.35 ? pick(['5L', '1#2', '3#5', '7', '0-6', '1-7', 'MON-FRI', 'sat,sun', '?', '0L', '6#1']) : generic(0, 7));
    const month = () => (rand() < 0.1 ? pick(['jan-mar', 'FEB', '2', '2,4,6,9,11']) : generic(1, 12));
    let compared = 0;
    for (let i = 0; i < 3000; i++) {
      const expr = [generic(0, 59), generic(0, 59), generic(0, 23), dom(), month(), dow()].join(' ');
      let native;
      try {
        native = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: 0 });
      } catch {
        continue;
      }
      let s: Schedule;
      try {
        s = sched(expr, 'UTC', true);
      } catch (error) {
        assert.fail(`${expr}: cron-parser accepts it but parseSchedule throws ${String(error)}`);
      }
      const start = Date.UTC(2020, 0, 1) + Math.floor(rand() * 10 * 365 * 86_400_000) + int(0, 999);
      native.reset(new Date(start));
      let ours = new Date(start);
      for (let k = 0; k < 12; k++) {
        let expected: string;
        try {
          expected = new Date(native.next().getTime()).toISOString();
        } catch {
          break; // cron-parser's 10000-step loop limit on rare expressions
        }
        ours = s.nextAfter(ours);
        assert.equal(ours.toISOString(), expected, `${expr} step ${k} from ${new Date(start).toISOString()}`);
        compared++;
      }
    }
    assert.ok(compared > 10_000, `compared ${compared}`);
  });
});

describe('UTC without Intl', () => {
  // UTC's rules are answered without Intl (no zone data loaded to start a process in UTC): the
  // same as Intl's rules for the same zone under another name.
  test('UTC has the offsets and transitions Intl gives Etc/UTC', () => {
    const utc = new ZoneRules('UTC');
    const viaIntl = new ZoneRules('Etc/UTC');
    for (let t = Date.UTC(1970, 0, 1); t < Date.UTC(2100, 0, 1); t += 97 * 86_400_000 + 12_345) assert.equal(utc.offsetAt(t), viaIntl.offsetAt(t));
    const from = Date.UTC(2000, 0, 1);
    const to = Date.UTC(2060, 0, 1);
    assert.equal(utc.nextTransition(from, to), viaIntl.nextTransition(from, to));
    assert.equal(utc.previousTransition(to, from), viaIntl.previousTransition(to, from));
    assert.equal(validateTimezone('UTC'), 'UTC');
    const a = parseSchedule('30 2 * * *', { timezone: 'UTC', allowSeconds: false });
    const b = parseSchedule('30 2 * * *', { timezone: 'Etc/UTC', allowSeconds: false });
    let at = new Date('2026-03-01T00:00:00Z');
    for (let i = 0; i < 5; i++) {
      const next = a.nextAfter(at);
      assert.deepEqual(next, b.nextAfter(at));
      at = next;
    }
  });
});
