import cronstrue from 'cronstrue';
import { between, cut, duration, formatFields, formatTable, json, time } from './table.ts';

// The CLI's output for people: crons, occurrences and fire times as tables and fields.

export function describe(schedule: string): string | null {
  try {
    return cronstrue.toString(schedule, { use24HourTimeFormat: true, throwExceptionOnParseError: true });
  } catch {
    return null;
  }
}

export type Cron = Record<string, any>;

export function cronState(c: Cron): string {
  if (c.enabled) return 'active';
  if (c.finished_at) return 'finished';
  return c.paused_reason ? `paused (${c.paused_reason})` : 'paused';
}

export function cronsTable(crons: Cron[], admin: boolean): string {
  const headers = ['CRON_ID', 'NAME', 'SCHEDULE', 'DESCRIPTION', 'TIMEZONE', 'STATE', 'NEXT_RUN', 'LAST_RUN', ...(admin ? ['OWNER'] : []), 'METADATA'];
  const rows = crons.map((c) => [
    c.cron_id,
    typeof c.metadata?.name === 'string' ? c.metadata.name : '',
    c.schedule,
    cut(describe(c.schedule) ?? '', 40),
    c.timezone ?? 'UTC',
    cut(cronState(c), 30),
    time(c.next_run_date),
    c.last_run_status ? `${c.last_run_status}${c.last_run_error ? `: ${cut(c.last_run_error, 40)}` : ''}` : 'never',
    ...(admin ? [c.user_id] : []),
    cut(json(c.metadata && Object.keys(c.metadata).length ? c.metadata : ''), 40),
  ]);
  return formatTable(headers, rows, 70);
}

/** The crons table that fits 120 columns: a short id, the name, the schedule and the state. */
export function cronsNarrowTable(crons: Cron[], admin: boolean): string {
  const headers = ['ID', 'NAME', 'SCHEDULE', 'TIMEZONE', 'STATE', 'NEXT_RUN', 'LAST_RUN', ...(admin ? ['OWNER'] : [])];
  const rows = crons.map((c) => [
    String(c.cron_id).slice(0, 8),
    cut(typeof c.metadata?.name === 'string' ? c.metadata.name : '', admin ? 16 : 22),
    cut(c.schedule, 18),
    cut(c.timezone ?? 'UTC', 16),
    cronState(c).replace(/ \(.*$/, ''),
    c.next_run_date ? time(c.next_run_date).slice(0, 16).replace('T', ' ') : '-',
    cut(c.last_run_status ?? 'never', 11),
    ...(admin ? [cut(c.user_id, 10)] : []),
  ]);
  return formatTable(headers, rows, 22);
}

export function cronFields(c: Cron): string {
  return formatFields([
    ['cron_id', c.cron_id],
    ['name', typeof c.metadata?.name === 'string' ? c.metadata.name : undefined],
    ['schedule', c.schedule],
    ['description', describe(c.schedule) ?? '-'],
    ['timezone', c.timezone ?? 'UTC'],
    ['state', cronState(c)],
    ['next_run', c.next_run_date ? `${time(c.next_run_date)}${c.enabled ? '' : ' (if resumed)'}` : null],
    ['last_run', c.last_run_status ? `${c.last_run_status} at ${time(c.last_run_at)}` : 'never'],
    ['last_error', c.last_run_error ?? undefined],
    ['assistant_id', c.assistant_id],
    ['thread_id', c.thread_id ?? 'none (stateless: a fresh thread per run)'],
    ['owner', c.user_id],
    ['on_run_completed', c.on_run_completed ?? undefined],
    ['missed_policy', c.missed_policy],
    ['overlap_policy', c.thread_id ? undefined : c.overlap_policy],
    ['jitter', c.jitter_seconds ? `${c.jitter_seconds}s (each occurrence starts at a fixed offset within it)` : undefined],
    [
      'retry_policy',
      c.payload?.retry_policy ? json(c.payload.retry_policy) : c.payload?.config?.retry_policy ? `${json(c.payload.config.retry_policy)} (config)` : undefined,
    ],
    ['end_time', time(c.end_time)],
    ['input', json(c.payload?.input) || null],
    ['metadata', json(c.metadata)],
    ['created_at', time(c.created_at)],
    ['updated_at', time(c.updated_at)],
  ]);
}

/**
 * Why a pending occurrence has not started: a retry's backoff, a limit with no room, its jittered
 * planned start still ahead, or a free worker; null when it is not waiting.
 */
export function waitingText(o: Record<string, any>, now = Date.now()): string | null {
  if (o.waiting === 'retry') return `retry at ${time(o.not_before)}`;
  if (typeof o.waiting === 'string' && o.waiting.startsWith('limit:')) return `limit ${o.waiting.slice('limit:'.length)}`;
  if (o.waiting === 'thread') return 'an older run of its thread';
  if (o.waiting) return String(o.waiting);
  if (o.status !== 'enqueued') return null;
  if (o.planned_for && new Date(o.planned_for).getTime() > now) return `planned ${time(o.planned_for)}`;
  return 'a free worker';
}

/** The earlier attempts' errors, oldest first: "#1 error RateLimited: 429 ...; #2 ...". */
export function attemptErrors(log: unknown): string {
  if (!Array.isArray(log) || log.length === 0) return '';
  return log
    .map((a: any, i: number) => {
      const e = a?.error;
      const text = e && typeof e === 'object' ? [e.error, e.message].filter(Boolean).join(': ') : json(e);
      return `#${a?.attempt ?? i + 1} ${a?.status ?? 'error'}${text ? ` ${text}` : ''}`;
    })
    .join('; ');
}

export function occurrencesTable(rows: Record<string, any>[]): string {
  return formatTable(
    ['SCHEDULED_FOR', 'TRIGGER', 'STATUS', 'REASON', 'ATTEMPTS', 'WAITING', 'LAG', 'WAIT', 'DURATION', 'RUN_ID', 'DETAIL'],
    rows.map((o) => [
      time(o.scheduled_for),
      o.trigger,
      `${o.status}${o.retries ? ` (retry ${o.retries})` : ''}`,
      o.reason ?? (o.skipped_count ? `${o.skipped_count} missed before` : ''),
      o.attempts === undefined ? '' : String(o.attempts),
      waitingText(o) ?? '',
      duration(between(o.scheduled_for, o.enqueued_at ?? o.started_at)),
      duration(between(o.enqueued_at, o.started_at)),
      duration(between(o.started_at, o.ended_at)),
      o.run_id ?? '',
      [o.error ?? o.error_excerpt ?? o.output_excerpt ?? '', attemptErrors(o.attempt_log) && `earlier: ${attemptErrors(o.attempt_log)}`]
        .filter(Boolean)
        .join(' | '),
    ]),
    80,
  );
}

/** Fire times as the API lists them ({utc, local, ...marks}). */
export function timesTable(times: unknown[]): string {
  return formatTable(
    ['LOCAL', 'UTC', 'NOTE'],
    times.map((t) => {
      if (typeof t === 'string') return [t, t, ''];
      const entry = t as Record<string, unknown>;
      // The DST case in words (dst_note, else dst), then any mark a newer server adds.
      const marks = entry.dst_note || entry.dst ? [json(entry.dst_note ?? `DST ${json(entry.dst)}`)] : [];
      // With jitter: when it starts (the planned start), if not at the fire time itself.
      if (typeof entry.planned_for === 'string' && entry.planned_for !== entry.utc) marks.push(`starts ${time(entry.planned_for)}`);
      for (const [k, v] of Object.entries(entry)) {
        if (['utc', 'local', 'dst', 'dst_note', 'planned_for'].includes(k) || v === null || v === false || v === undefined) continue;
        marks.push(v === true ? k : `${k}=${json(v)}`);
      }
      return [json(entry.local), time(json(entry.utc)), marks.join(' ')];
    }),
    80,
  );
}

/** An answer of a shape this CLI does not know in detail: its scalar fields, then its lists as tables. */
export function generic(body: unknown): string {
  if (Array.isArray(body)) {
    if (body.length === 0) return '(none)';
    const keys = [...new Set(body.flatMap((r) => (r && typeof r === 'object' ? Object.keys(r) : [])))].slice(0, 8);
    return formatTable(
      keys.map((k) => k.toUpperCase()),
      body.map((r) => keys.map((k) => json((r as Record<string, unknown>)?.[k]))),
    );
  }
  if (!body || typeof body !== 'object') return json(body);
  // Nested objects read as dotted names (database.ok, queue.queued); lists of objects as tables.
  const fields: [string, unknown][] = [];
  const lists: [string, unknown[]][] = [];
  const walk = (prefix: string, obj: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(obj)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (Array.isArray(v)) {
        if (v.every((x) => x === null || typeof x !== 'object')) fields.push([name, v.length ? v.join(', ') : '-']);
        else lists.push([name, v]);
      } else if (v && typeof v === 'object') walk(name, v as Record<string, unknown>);
      else fields.push([name, v]);
    }
  };
  walk('', body as Record<string, unknown>);
  const parts = fields.length ? [formatFields(fields)] : [];
  for (const [k, v] of lists) parts.push(`${k}:\n${generic(v)}`);
  return parts.join('\n');
}
