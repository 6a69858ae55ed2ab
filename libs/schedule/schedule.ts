import { CronExpressionParser } from 'cron-parser';
import type { CronExpression } from 'cron-parser';
import { ScheduleError } from './errors.ts';
import { compileMatcher, SEARCH_YEARS } from './matcher.ts';
import type { WallMatcher } from './matcher.ts';
import { validateTimezone, zoneRules } from './timezone.ts';
import type { ZoneRules } from './timezone.ts';

export interface ParseScheduleOptions {
  /** IANA zone name; null/undefined means "UTC". */
  timezone?: string | null;
  /** Accept 6-field expressions with a leading seconds field (CRON_ALLOW_SECONDS_SCHEDULE). */
  allowSeconds: boolean;
}

/**
 * A validated cron schedule in a time zone. Immutable; instances are cached and
 * shared, so do not attach state to them.
 *
 * DST semantics (docs/scheduling.md, "What we promise" point 7):
 * - An *interval* schedule is one whose hour field allows every hour (`*`, `*\/1`,
 *   `0-23`), e.g. `*\/15 * * * *`, `0 * * * *`, `30 * * * *`. It fires at every real
 *   instant whose local time matches: local times skipped by a spring-forward gap do
 *   not exist and do not fire; local times repeated by a fall-back fire in both passes.
 * - Every other schedule is a *fixed-time* schedule (`30 2 * * *`, `0 9-17 * * 1-5`):
 *   each matching local wall-clock time fires exactly once. A time inside a
 *   spring-forward gap fires at the first valid instant after the gap (the transition
 *   instant; several gap times collapse into that one firing); a repeated time fires
 *   at its first instance only.
 */
export interface Schedule {
  /** The expression as given, trimmed. */
  readonly expression: string;
  /** The resolved IANA time zone ("UTC" when none was given). */
  readonly timezone: string;
  /** True for a 6-field expression (seconds first). */
  readonly hasSeconds: boolean;
  /** The next occurrence strictly after `after`. */
  nextAfter(after: Date): Date;
  /** Occurrences in (afterExclusive, untilInclusive], at most `max`; `truncated` when more exist in the range. */
  occurrencesBetween(afterExclusive: Date, untilInclusive: Date, max: number): { dates: Date[]; truncated: boolean };
  /** The next `count` occurrences strictly after `after`. */
  next(count: number, after: Date): Date[];
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
const ALIAS_LIST = Object.keys(ALIASES).join(', ');
const FIVE_FIELDS = '5 fields (minute hour day-of-month month day-of-week)';
const FIELD_NAMES = ['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;

/** Instants accepted by nextAfter & co. (years 1900..9000): the zone and calendar code assume real dates. */
const MIN_INSTANT = Date.UTC(1900, 0, 1);
const MAX_INSTANT = Date.UTC(9000, 0, 1);
/** How far back to look for a fall-back transition whose repeated wall times must not fire twice. */
const LOOKBACK = 2 * 86_400_000;

const SCHEDULE_CACHE_SIZE = 10_000;
const MATCHER_CACHE_SIZE = 10_000;
const scheduleCache = new Map<string, Schedule>();
const matcherCache = new Map<string, WallMatcher>();

function lruGet<V>(cache: Map<string, V>, key: string): V | undefined {
  const value = cache.get(key);
  if (value !== undefined) {
    cache.delete(key);
    cache.set(key, value);
  }
  return value;
}

function lruSet<V>(cache: Map<string, V>, key: string, value: V, max: number): void {
  cache.set(key, value);
  if (cache.size > max) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
}

function invalid(expression: string, reason: string): ScheduleError {
  return new ScheduleError('schedule', expression, `invalid schedule ${JSON.stringify(expression)}: ${reason}`);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Validates a cron expression and returns a (cached) {@link Schedule}.
 *
 * Accepted: 5 fields (minute hour day-of-month month day-of-week); 6 fields with a
 * leading seconds field only when `allowSeconds`; the aliases @yearly @annually
 * @monthly @weekly @daily @midnight @hourly (case-insensitive). Field syntax is
 * cron-parser's: lists, ranges, steps, month/day names, `?`, `L`, `nL`, `n#k`.
 * Day-of-month and day-of-week both restricted means either may match (OR).
 * Refused: empty, other field counts, `@reboot` and other aliases, `H` (hashed)
 * values, anything cron-parser refuses (its reason is passed through), and an
 * expression that matches no date at all.
 *
 * @throws {ScheduleError} field "schedule" or "timezone".
 */
export function parseSchedule(expr: string, opts: ParseScheduleOptions): Schedule {
  if (typeof expr !== 'string') {
    throw new ScheduleError('schedule', String(expr), `invalid schedule: expected a string, got ${expr === null ? 'null' : typeof expr}`);
  }
  const timezone = opts.timezone === null || opts.timezone === undefined ? 'UTC' : opts.timezone;
  const allowSeconds = opts.allowSeconds === true;
  const expression = expr.trim();
  const key = `${allowSeconds ? 's' : 'm'}\u0000${timezone}\u0000${expression}`;
  const cached = lruGet(scheduleCache, key);
  if (cached !== undefined) return cached;

  const { sixFields, hasSeconds } = normalise(expression, allowSeconds);
  validateTimezone(timezone);
  const matcher = matcherFor(expression, sixFields);
  const schedule = new CronSchedule(expression, timezone, hasSeconds, matcher, zoneRules(timezone));
  lruSet(scheduleCache, key, schedule, SCHEDULE_CACHE_SIZE);
  return schedule;
}

/** Field-count and alias checks; returns the 6-field (seconds first) form for cron-parser. */
function normalise(expression: string, allowSeconds: boolean): { sixFields: string; hasSeconds: boolean } {
  if (expression === '') {
    throw invalid(expression, `the expression is empty; expected ${FIVE_FIELDS} or an alias such as @daily`);
  }
  if (expression.startsWith('@')) {
    const alias = ALIASES[expression.toLowerCase()];
    if (alias === undefined) {
      throw invalid(expression, `unsupported alias ${expression}; supported aliases are ${ALIAS_LIST}`);
    }
    return { sixFields: `0 ${alias}`, hasSeconds: false };
  }
  const fields = expression.split(/\s+/);
  if (fields.length === 5) return { sixFields: `0 ${fields.join(' ')}`, hasSeconds: false };
  const last = fields[fields.length - 1];
  if (fields.length >= 6 && looksLikeYear(last)) {
    // `0 0 1 1 * 2030`: a year field (Quartz, AWS) read as anything else would be blamed on the
    // wrong field (day-of-week, or the seconds switch).
    const year = `the ${ordinal(fields.length)} field ${JSON.stringify(last)} looks like a year, and years are not supported`;
    const endTime = 'to stop a cron at a date, set end_time';
    if (fields.length === 6 && allowSeconds) {
      throw invalid(expression, `${year}: 6 fields are read as second minute hour day-of-month month day-of-week; ${endTime}`);
    }
    const expected = allowSeconds ? `${FIVE_FIELDS}, or 6 fields with seconds first` : FIVE_FIELDS;
    throw invalid(expression, `too many fields (got ${fields.length}): ${year}; expected ${expected}; ${endTime}`);
  }
  if (fields.length === 6) {
    if (!allowSeconds) {
      throw invalid(
        expression,
        `6-field seconds schedules are disabled (got 6 fields; a leading seconds field needs CRON_ALLOW_SECONDS_SCHEDULE=true); use ${FIVE_FIELDS}`,
      );
    }
    return { sixFields: fields.join(' '), hasSeconds: true };
  }
  const expected = allowSeconds ? `${FIVE_FIELDS}, or 6 fields with seconds first` : FIVE_FIELDS;
  throw invalid(expression, `expected ${expected}, got ${fields.length} field${fields.length === 1 ? '' : 's'}`);
}

/** A field made only of 4-digit numbers from 1970 on (a year, a range or list of years), which no cron field holds. */
function looksLikeYear(field: string): boolean {
  if (!/^[\d,\-/*]+$/.test(field)) return false;
  const numbers = field.split(/[,\-/]/).filter((n) => n !== '' && n !== '*');
  return numbers.length > 0 && numbers.some((n) => /^\d{4}$/.test(n) && Number(n) >= 1970);
}

const ordinal = (n: number): string => `${n}${n === 1 ? 'st' : n === 2 ? 'nd' : n === 3 ? 'rd' : 'th'}`;

function matcherFor(expression: string, sixFields: string): WallMatcher {
  const cached = lruGet(matcherCache, sixFields);
  if (cached !== undefined) return cached;
  const fields = sixFields.split(' ');
  fields.forEach((field, i) => {
    // `H` (hashed) picks a random value per parse unless seeded, so two processes
    // would disagree on the times. Month and weekday names never contain an H
    // except "thu", which is stripped first.
    const plain = i >= 4 ? field.replace(/[a-z]{3}/gi, '') : field;
    if (plain.includes('H')) {
      throw invalid(expression, `hashed values (H) are not supported (in the ${FIELD_NAMES[i]} field ${JSON.stringify(field)})`);
    }
  });
  let parsed: CronExpression;
  try {
    parsed = CronExpressionParser.parse(sixFields, { tz: 'UTC', currentDate: 0 });
  } catch (error) {
    const reason = errorMessage(error);
    const deduplicated = reason.includes('duplicate values') ? withoutDuplicates(fields) : null;
    try {
      if (deduplicated === null) throw error;
      parsed = CronExpressionParser.parse(deduplicated, { tz: 'UTC', currentDate: 0 });
    } catch {
      let where = locateField(fields);
      if (where === '' && reason.includes('Invalid explicit day of month definition')) {
        where = ' (the day of month never occurs in the given months)';
      }
      throw invalid(expression, reason + where);
    }
  }
  const matcher = compileMatcher(parsed);
  try {
    matcher.nextWall(Date.UTC(2000, 0, 1));
  } catch {
    throw invalid(expression, `it matches no date (nothing within ${SEARCH_YEARS} years)`);
  }
  lruSet(matcherCache, sixFields, matcher, MATCHER_CACHE_SIZE);
  return matcher;
}

/**
 * cron-parser refuses a list that names a value twice ("0,7" in day-of-week, both
 * Sunday; "*\/5,10"), which cron accepts. Rewrites each plain list field (no L, #, ?)
 * as the sorted union of its items' values; null when nothing could be rewritten.
 */
function withoutDuplicates(fields: readonly string[]): string | null {
  let changed = false;
  const out = fields.map((field, i) => {
    if (!field.includes(',') || /[LH#?]/.test(field.replace(/[a-z]{3}/gi, ''))) return field;
    const values = new Set<number>();
    for (const item of field.split(',')) {
      const probe = fields.map((f, k) => (k === i ? item : k === 0 ? '0' : '*')).join(' ');
      let parsed: CronExpression;
      try {
        parsed = CronExpressionParser.parse(probe, { tz: 'UTC', currentDate: 0 });
      } catch {
        return field;
      }
      const f = parsed.fields;
      const list = [f.second, f.minute, f.hour, f.dayOfMonth, f.month, f.dayOfWeek][i].values;
      for (const v of list) {
        if (typeof v !== 'number') return field;
        values.add(i === 5 && v === 7 ? 0 : v);
      }
    }
    changed = true;
    return [...values].sort((a, b) => a - b).join(',');
  });
  return changed ? out.join(' ') : null;
}

/** " (in the minute field "61")" when a single field fails on its own, else "". */
function locateField(fields: readonly string[]): string {
  for (let i = 0; i < fields.length; i++) {
    const probe = fields.map((f, k) => (k === i ? f : k === 0 ? '0' : '*')).join(' ');
    try {
      CronExpressionParser.parse(probe, { tz: 'UTC', currentDate: 0 });
    } catch {
      return ` (in the ${FIELD_NAMES[i]} field ${JSON.stringify(fields[i])})`;
    }
  }
  return '';
}

function instant(value: Date, name: string): number {
  if (!(value instanceof Date)) throw new TypeError(`${name} must be a Date`);
  const t = value.getTime();
  if (!(t >= MIN_INSTANT && t <= MAX_INSTANT)) {
    throw new RangeError(`${name} must be a valid date between 1900 and 9000, got ${Number.isNaN(t) ? 'Invalid Date' : value.toISOString()}`);
  }
  return t;
}

class CronSchedule implements Schedule {
  readonly expression: string;
  readonly timezone: string;
  readonly hasSeconds: boolean;
  readonly #matcher: WallMatcher;
  readonly #zone: ZoneRules;
  /** Interval schedule: every hour allowed (see {@link Schedule}). */
  readonly #interval: boolean;

  constructor(expression: string, timezone: string, hasSeconds: boolean, matcher: WallMatcher, zone: ZoneRules) {
    this.expression = expression;
    this.timezone = timezone;
    this.hasSeconds = hasSeconds;
    this.#matcher = matcher;
    this.#zone = zone;
    this.#interval = matcher.everyHour;
  }

  nextAfter(after: Date): Date {
    return new Date(this.#nextAfter(instant(after, 'after')));
  }

  occurrencesBetween(afterExclusive: Date, untilInclusive: Date, max: number): { dates: Date[]; truncated: boolean } {
    let t = instant(afterExclusive, 'afterExclusive');
    const until = instant(untilInclusive, 'untilInclusive');
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`max must be a non-negative integer, got ${max}`);
    const dates: Date[] = [];
    for (;;) {
      t = this.#nextAfter(t);
      if (t > until) return { dates, truncated: false };
      if (dates.length === max) return { dates, truncated: true };
      dates.push(new Date(t));
    }
  }

  next(count: number, after: Date): Date[] {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
    let t = instant(after, 'after');
    const dates: Date[] = [];
    while (dates.length < count) {
      t = this.#nextAfter(t);
      dates.push(new Date(t));
    }
    return dates;
  }

  /**
   * The first occurrence strictly after instant `a` (ms).
   *
   * Real time is cut into segments of constant UTC offset by the zone's transitions.
   * Within a segment, wall clock = instant + offset is monotonic, so the first
   * matching wall-clock time in the segment's wall range gives the segment's first
   * occurrence. Segments are visited in order; at each transition the DST rules apply:
   * forward (gap): a fixed-time schedule matching a wall time inside the gap fires at
   * the transition instant; backward (overlap): a fixed-time schedule skips the wall
   * times it already had in the previous segment.
   */
  #nextAfter(a: number): number {
    const zone = this.#zone;
    const matcher = this.#matcher;
    const interval = this.#interval;
    let offset = zone.offsetAt(a);
    let segmentStart = a; // transitions strictly after this end the segment
    let wallFrom = a + offset; // lower bound of wall-clock candidates
    let inclusive = false;
    if (!interval) {
      // `a` may lie in the second pass of a fall-back: its repeated wall times already fired.
      const previous = zone.previousTransition(a, a - LOOKBACK);
      if (previous !== null && previous.before > previous.after && previous.at + previous.before > wallFrom) {
        wallFrom = previous.at + previous.before;
        inclusive = true;
      }
    }
    for (let guard = 0; guard < 10_000; guard++) {
      const wall = matcher.nextWall(inclusive ? wallFrom - 1 : wallFrom);
      const t = wall - offset;
      const transition = zone.nextTransition(segmentStart, t);
      if (transition === null) return t;
      // The candidate lies beyond this segment: continue in the next one.
      segmentStart = transition.at;
      offset = transition.after;
      inclusive = true;
      if (transition.after > transition.before) {
        // Spring forward: wall times [at + before, at + after) do not exist.
        if (!interval) {
          const skipped = matcher.nextWall(transition.at + transition.before - 1);
          if (skipped < transition.at + transition.after) return transition.at;
        }
        wallFrom = transition.at + transition.after;
      } else {
        // Fall back: wall times [at + after, at + before) happen a second time.
        wallFrom = interval ? transition.at + transition.after : transition.at + transition.before;
      }
    }
    throw new Error(`schedule ${JSON.stringify(this.expression)} in ${this.timezone}: no occurrence found after ${new Date(a).toISOString()}`);
  }
}
