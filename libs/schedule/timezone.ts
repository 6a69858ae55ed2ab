import { ScheduleError } from './errors.ts';

const SECOND = 1000;
const DAY = 86_400_000;
/** Offsets are sampled once a day; a chunk of this many days is computed at a time and cached. */
const CHUNK_DAYS = 64;
const CHUNK = CHUNK_DAYS * DAY;
/** Cached chunks per zone before the cache is dropped (4096 chunks is about 700 years). */
const MAX_CHUNKS_PER_ZONE = 4096;
const MAX_ZONES = 1024;

// UTC is every runtime's, valid without asking Intl (whose first DateTimeFormat loads ICU's zone data).
const validZones = new Set<string>(['UTC']);

/**
 * Validates an IANA time zone name ("UTC", "America/New_York", "Australia/Lord_Howe")
 * and returns it unchanged. Offsets such as "+05:00" are refused: they are not zone
 * names, and PostgreSQL reads POSIX-style offsets with the opposite sign.
 * @throws {ScheduleError} with field "timezone".
 */
export function validateTimezone(tz: string): string {
  if (typeof tz === 'string' && validZones.has(tz)) return tz;
  if (typeof tz !== 'string' || tz.trim() === '') {
    const shown = typeof tz === 'string' ? tz : String(tz);
    throw new ScheduleError(
      'timezone',
      shown,
      `invalid timezone ${JSON.stringify(shown)}: expected an IANA time zone name such as "UTC" or "America/New_York"`,
    );
  }
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(tz)) {
    throw new ScheduleError(
      'timezone',
      tz,
      `invalid timezone ${JSON.stringify(tz)}: expected an IANA time zone name such as "UTC" or "America/New_York" (UTC offsets are not accepted)`,
    );
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ScheduleError('timezone', tz, `invalid timezone ${JSON.stringify(tz)}: not a known IANA time zone name (e.g. "UTC", "America/New_York")`);
  }
  if (validZones.size >= MAX_ZONES) {
    validZones.clear();
    validZones.add('UTC');
  }
  validZones.add(tz);
  return tz;
}

/**
 * IANA's current names for the zones ICU (so Intl, in Node 24) still calls by a former name:
 * `resolvedOptions().timeZone` of "Asia/Kolkata" is "Asia/Calcutta". A stored timezone keeps
 * the current name (aliases map to it, never the other way).
 */
const CURRENT_NAMES: Readonly<Record<string, string>> = {
  'Africa/Asmera': 'Africa/Asmara',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'America/Catamarca': 'America/Argentina/Catamarca',
  'America/Coral_Harbour': 'America/Atikokan',
  'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Godthab': 'America/Nuuk',
  'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Jujuy': 'America/Argentina/Jujuy',
  'America/Louisville': 'America/Kentucky/Louisville',
  'America/Mendoza': 'America/Argentina/Mendoza',
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Europe/Kiev': 'Europe/Kyiv',
  'Pacific/Enderbury': 'Pacific/Kanton',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'Pacific/Truk': 'Pacific/Chuuk',
};

/**
 * The name a timezone is stored and shown by: the canonical IANA name of what was typed
 * (`utc` -> `UTC`, `europe/paris` -> `Europe/Paris`, `US/Eastern` -> `America/New_York`,
 * `Asia/Calcutta` -> `Asia/Kolkata`; `Asia/Kolkata` stays). An unknown name comes back as typed
 * (validation names it).
 */
export function canonicalZoneName(tz: string): string {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return tz;
  }
  return CURRENT_NAMES[resolved] ?? resolved;
}

/** A change of UTC offset: from `at` (ms since epoch, inclusive) the offset is `after` instead of `before` (ms). */
export interface Transition {
  readonly at: number;
  readonly before: number;
  readonly after: number;
}

interface Chunk {
  /** Offset at the chunk's first instant. */
  readonly offset0: number;
  /** Transitions with `at` in (chunkStart, chunkStart + CHUNK], ascending. */
  readonly transitions: readonly Transition[];
}

/**
 * UTC offsets and offset transitions of one zone, computed from Intl (the runtime's
 * tzdata) and cached in 64-day chunks. Offsets are sampled once a day and each change
 * is located to the second by bisection, so two transitions less than a day apart that
 * cancel out would be missed (no such pair exists in current tzdata).
 */
export class ZoneRules {
  readonly name: string;
  #formatter: Intl.DateTimeFormat | undefined;
  readonly #chunks = new Map<number, Chunk>();

  constructor(name: string) {
    this.name = name;
  }

  /** Made when first needed: UTC never needs it (and a process that schedules in UTC only never loads ICU's zone data). */
  get #format(): Intl.DateTimeFormat {
    this.#formatter ??= new Intl.DateTimeFormat('en-US', {
      timeZone: this.name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    return this.#formatter;
  }

  /** Offset (local wall clock minus UTC, in ms) in effect at instant `t`. */
  offsetAt(t: number): number {
    const chunk = this.#chunk(Math.floor(t / CHUNK));
    let offset = chunk.offset0;
    for (const tr of chunk.transitions) {
      if (t < tr.at) break;
      offset = tr.after;
    }
    return offset;
  }

  /** The first transition with `after < at <= limit`, or null. */
  nextTransition(after: number, limit: number): Transition | null {
    for (let i = Math.floor(after / CHUNK); i * CHUNK < limit; i++) {
      for (const tr of this.#chunk(i).transitions) {
        if (tr.at > limit) return null;
        if (tr.at > after) return tr;
      }
    }
    return null;
  }

  /** The last transition with `floor < at <= t`, or null. */
  previousTransition(t: number, floor: number): Transition | null {
    // A transition exactly at a chunk start is stored in the chunk before it.
    for (let i = Math.floor(t / CHUNK); (i + 1) * CHUNK > floor; i--) {
      const list = this.#chunk(i).transitions;
      for (let k = list.length - 1; k >= 0; k--) {
        const tr = list[k];
        if (tr.at <= floor) return null;
        if (tr.at <= t) return tr;
      }
    }
    return null;
  }

  #chunk(index: number): Chunk {
    const cached = this.#chunks.get(index);
    if (cached !== undefined) return cached;
    // UTC: offset 0 and no transition, what Intl answers for it (test/schedule.test.ts compares), without asking it.
    if (this.name === 'UTC') return UTC_CHUNK;
    const start = index * CHUNK;
    const offset0 = this.#rawOffset(start);
    const transitions: Transition[] = [];
    let previous = offset0;
    for (let k = 1; k <= CHUNK_DAYS; k++) {
      const sample = start + k * DAY;
      const offset = this.#rawOffset(sample);
      let lo = sample - DAY;
      // Usually one change per sampled day; loop in case a day holds more than one.
      while (offset !== previous) {
        let hi = sample;
        while (hi - lo > SECOND) {
          const mid = lo + Math.floor((hi - lo) / (2 * SECOND)) * SECOND;
          if (this.#rawOffset(mid) === previous) lo = mid;
          else hi = mid;
        }
        const after = this.#rawOffset(hi);
        transitions.push({ at: hi, before: previous, after });
        previous = after;
        lo = hi;
      }
    }
    const chunk: Chunk = { offset0, transitions };
    if (this.#chunks.size >= MAX_CHUNKS_PER_ZONE) this.#chunks.clear();
    this.#chunks.set(index, chunk);
    return chunk;
  }

  /** Offset at `t` straight from Intl, to the second. */
  #rawOffset(t: number): number {
    const whole = Math.floor(t / SECOND) * SECOND;
    let year = 0;
    let month = 0;
    let day = 0;
    let hour = 0;
    let minute = 0;
    let second = 0;
    for (const part of this.#format.formatToParts(whole)) {
      switch (part.type) {
        case 'year':
          year = Number(part.value);
          break;
        case 'month':
          month = Number(part.value);
          break;
        case 'day':
          day = Number(part.value);
          break;
        case 'hour':
          hour = Number(part.value);
          break;
        case 'minute':
          minute = Number(part.value);
          break;
        case 'second':
          second = Number(part.value);
          break;
        default:
          break;
      }
    }
    return Date.UTC(year, month - 1, day, hour, minute, second) - whole;
  }
}

const UTC_CHUNK: Chunk = { offset0: 0, transitions: [] };

const zones = new Map<string, ZoneRules>();

/** Cached {@link ZoneRules} for a zone name that {@link validateTimezone} accepted. */
export function zoneRules(tz: string): ZoneRules {
  let rules = zones.get(tz);
  if (rules === undefined) {
    if (zones.size >= MAX_ZONES) zones.clear();
    rules = new ZoneRules(tz);
    zones.set(tz, rules);
  }
  return rules;
}
