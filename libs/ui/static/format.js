// @ts-check
// Pure helpers: times, durations, cron descriptions, a run's waits and attempts in words, filters
// as typed. No DOM here: building it is ./dom.js's.

/**
 * A cron expression in words (cronstrue; 6 fields = seconds first, as agentcron reads them), or null.
 * @param {unknown} expression
 * @returns {string | null}
 */
export function describeSchedule(expression) {
  // The page loads cronstrue as a classic script (a global), not as a module.
  const cronstrue = /** @type {{ cronstrue?: { toString(e: string, o: object): string } }} */ (globalThis).cronstrue;
  if (!cronstrue || typeof expression !== 'string') return null;
  try {
    return cronstrue.toString(expression, { use24HourTimeFormat: true, throwExceptionOnParseError: true });
  } catch {
    return null;
  }
}

/** @type {Map<string, Intl.DateTimeFormat>} */
const formatters = new Map();
/**
 * @param {string | null | undefined} timeZone
 * @returns {Intl.DateTimeFormat}
 */
function formatter(timeZone) {
  const key = timeZone ?? 'UTC';
  if (!formatters.has(key)) {
    let f;
    try {
      f = new Intl.DateTimeFormat('sv-SE', {
        timeZone: key,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        timeZoneName: 'short',
      });
    } catch {
      f = new Intl.DateTimeFormat('sv-SE', {
        timeZone: 'UTC',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        timeZoneName: 'short',
      });
    }
    formatters.set(key, f);
  }
  return /** @type {Intl.DateTimeFormat} */ (formatters.get(key));
}

/**
 * `2030-01-02 09:00:00 GMT+1` in the given IANA zone (UTC when null).
 * @param {string | null | undefined} iso
 * @param {string | null} [timeZone]
 */
export function formatTime(iso, timeZone) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return formatter(timeZone).format(d);
}

/**
 * A span of milliseconds for people: 850 ms, 4.2 s, 3 min 2 s, 2 h 5 min, 3 d 4 h.
 * @param {number | null | undefined} ms
 */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(a < 10_000 ? 1 : 0)} s`;
  const s = Math.round(a / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86400) return `${sign}${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  return `${sign}${Math.floor(s / 86400)} d${Math.floor((s % 86400) / 3600) ? ` ${Math.floor((s % 86400) / 3600)} h` : ''}`;
}

/**
 * "in 4 min" / "3 h ago" from now.
 * @param {string | null | undefined} iso
 */
export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const diff = new Date(iso).getTime() - now;
  if (Math.abs(diff) < 1000) return 'now';
  return diff > 0 ? `in ${formatDuration(diff)}` : `${formatDuration(-diff)} ago`;
}

/**
 * Milliseconds from a to b (ISO strings), or null when either is missing.
 * @param {string | null | undefined} a
 * @param {string | null | undefined} b
 */
export function between(a, b) {
  if (!a || !b) return null;
  return new Date(b).getTime() - new Date(a).getTime();
}

/**
 * An occurrence's timings, each measuring one thing. Fire lag: how late the scheduler enqueued an
 * occurrence it fired on time (trigger schedule or create; from its scheduled time). A backfill's
 * or a manual trigger's distance from its scheduled time is no lag, it is its age when fired:
 * `age`, shown apart. Queue wait: from the enqueue this run waited on (a retried occurrence's
 * latest retry, not its first enqueue) to its start. Duration: start to end.
 * @param {Pick<import('../types.ts').Occurrence, 'scheduled_for' | 'enqueued_at' | 'started_at' | 'ended_at'>
 *   & { trigger?: string, retried_at?: string | null }} o
 */
export function occurrenceTimings(o) {
  const onTime = o.trigger === undefined || o.trigger === 'schedule' || o.trigger === 'create';
  const fired = o.enqueued_at ?? o.started_at;
  const lag = onTime ? between(o.scheduled_for, fired) : null;
  // Fired ahead of its instant (CRON_LOOKAHEAD_MS): not late, and its wait starts at the instant.
  const ahead = lag !== null && lag < 0;
  return {
    lag: ahead ? 0 : lag,
    age: onTime ? null : between(o.scheduled_for, fired),
    wait: between(o.retried_at ?? (ahead ? o.scheduled_for : o.enqueued_at), o.started_at),
    duration: between(o.started_at, o.ended_at),
  };
}

/**
 * Why a pending occurrence (or run) has not started yet, in words, or null when it is not
 * waiting: a retry's backoff, a limit without room, its jittered planned start still ahead, or a
 * free worker.
 * @param {{ waiting?: string | null, not_before?: string | null, status?: string, planned_for?: string | null,
 *   scheduled_for?: string | null } | null | undefined} o
 * @param {string | null} [timeZone]
 */
export function waitingText(o, timeZone, now = Date.now()) {
  if (!o) return null;
  if (o.waiting === 'retry') return `retry backoff until ${formatTime(o.not_before, timeZone)}`;
  if (typeof o.waiting === 'string' && o.waiting.startsWith('limit:')) return `limit ${o.waiting.slice('limit:'.length)} (no room)`;
  if (o.waiting === 'thread') return 'an older run of its thread';
  if (o.waiting) return String(o.waiting);
  if (o.status !== 'enqueued' && o.status !== 'pending') return null;
  if (o.planned_for && new Date(o.planned_for).getTime() > now) return `its planned start, ${formatTime(o.planned_for, timeZone)}`;
  // Fired ahead (CRON_LOOKAHEAD_MS): it starts at its scheduled time.
  if (o.scheduled_for && new Date(o.scheduled_for).getTime() > now) return `its scheduled time, ${formatTime(o.scheduled_for, timeZone)}`;
  return 'a free worker';
}

/**
 * An earlier attempt in words: "#1 error: RateLimited: 429 Too Many Requests".
 * @param {{ attempt?: number, status?: string, error?: unknown } | null | undefined} a
 * @param {number} i
 */
export function attemptText(a, i) {
  const e = a?.error;
  const text =
    e && typeof e === 'object'
      ? [/** @type {{ error?: unknown }} */ (e).error, /** @type {{ message?: unknown }} */ (e).message].filter(Boolean).join(': ')
      : e
        ? String(e)
        : '';
  return `#${a?.attempt ?? i + 1} ${a?.status ?? 'error'}${text ? `: ${text}` : ''}`;
}

/**
 * The offset at the end of a local ISO time (`2030-03-31T03:00:00+02:00` -> `+02:00`), or null.
 * @param {string | null | undefined} localIso
 */
export function offsetOf(localIso) {
  const m = /([+-]\d{2}:?\d{2}|Z)$/.exec(localIso ?? '');
  return m ? m[1] : null;
}

/**
 * What to say about a fire time beyond its instant: the API's DST case in words (dst_note, or
 * dst: skipped / repeated_first / repeated_second) and any other mark a newer server adds.
 * @param {Record<string, unknown> | string | null | undefined} t
 * @returns {string[]}
 */
export function fireTimeMarks(t) {
  if (!t || typeof t !== 'object') return [];
  const marks = [];
  if (t.dst_note || t.dst) marks.push(typeof t.dst_note === 'string' ? t.dst_note : `DST: ${String(t.dst)}`);
  for (const [k, v] of Object.entries(t)) {
    // planned_for (the jittered start) has a column of its own.
    if (['utc', 'local', 'dst', 'dst_note', 'planned_for'].includes(k) || v === null || v === false || v === undefined) continue;
    marks.push(v === true ? k : `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return marks;
}

/**
 * A metadata filter as typed: a JSON object, or `key=value` pairs separated by commas
 * (values read as JSON when they are: `n=3` is a number, `team=ops` a string). Throws on junk.
 * @param {string | null | undefined} text
 * @returns {Record<string, unknown> | null}
 */
export function parseMetadataFilter(text) {
  const t = (text ?? '').trim();
  if (!t) return null;
  if (t.startsWith('{')) {
    const v = JSON.parse(t);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('metadata must be a JSON object');
    return v;
  }
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const part of t.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`"${part.trim()}" is not key=value`);
    const key = part.slice(0, i).trim();
    const raw = part.slice(i + 1).trim();
    /** @type {unknown} */
    let value = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[key] = value;
  }
  return out;
}

/**
 * A compact one-line JSON for tables (cut at `max` characters).
 * @param {unknown} value
 */
export function jsonLine(value, max = 80) {
  if (value === undefined || value === null) return '';
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
