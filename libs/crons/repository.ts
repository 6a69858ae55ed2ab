import type { PoolClient, Queryable } from '../db/index.ts';
import type { MissedPolicy } from '../firing/index.ts';
import { attemptsMade } from '../runs/repository.ts';
import type { CronPayload, CronRow, OnRunCompleted, OverlapPolicy } from './types.ts';

// SQL of the crons API. Every query that reads or changes a cron filters on its owner: another
// user's cron is as absent as a missing one.

/** A stored cron with its assistant's graph (what firing needs). */
export interface CronWithGraph extends CronRow {
  graph_id: string;
}

/** The caller-facing Cron: the LangGraph field names plus agentcron's last_run_* and policies. */
export interface CronResponse {
  cron_id: string;
  assistant_id: string;
  thread_id: string | null;
  on_run_completed: OnRunCompleted | null;
  end_time: string | null;
  schedule: string;
  timezone: string | null;
  created_at: string;
  updated_at: string;
  payload: CronPayload;
  user_id: string;
  next_run_date: string | null;
  metadata: Record<string, unknown>;
  enabled: boolean;
  /** Why the cron was paused, as its owner wrote it (null when enabled). */
  paused_reason: string | null;
  last_run_at: string | null;
  last_run_status: string | null;
  last_run_error: string | null;
  last_run_id: string | null;
  finished_at: string | null;
  missed_policy: MissedPolicy;
  overlap_policy: OverlapPolicy;
  /** Each scheduled occurrence starts at scheduled_for plus a deterministic offset in [0, jitter_seconds). */
  jitter_seconds: number;
}

const CRON_COLUMNS = `c.cron_id, c.assistant_id, c.thread_id, c.user_id, c.schedule, c.timezone, c.end_time, c.enabled, c.paused_reason,
  c.on_run_completed, c.payload, c.metadata, c.next_run_date, c.fired_through, c.missed_policy, c.overlap_policy, c.jitter_seconds, c.finished_at,
  c.last_run_at, c.last_run_status, c.last_run_error, c.last_run_id, c.created_at, c.updated_at`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toCronResponse(c: CronRow): CronResponse {
  return {
    cron_id: c.cron_id,
    assistant_id: c.assistant_id,
    thread_id: c.thread_id,
    on_run_completed: c.on_run_completed,
    end_time: iso(c.end_time),
    schedule: c.schedule,
    timezone: c.timezone,
    created_at: c.created_at.toISOString(),
    updated_at: c.updated_at.toISOString(),
    payload: c.payload,
    user_id: c.user_id,
    next_run_date: iso(c.next_run_date),
    metadata: c.metadata,
    enabled: c.enabled,
    paused_reason: c.paused_reason,
    last_run_at: iso(c.last_run_at),
    last_run_status: c.last_run_status,
    last_run_error: c.last_run_error,
    last_run_id: c.last_run_id,
    finished_at: iso(c.finished_at),
    missed_policy: c.missed_policy,
    overlap_policy: c.overlap_policy,
    jitter_seconds: c.jitter_seconds,
  };
}

/** The transaction's now(): the one clock every cron time is computed from. */
export async function transactionNow(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>(`SELECT now() AS now`);
  return rows[0].now;
}

/**
 * The database clock at this statement (clock_timestamp()), for decisions taken after waiting
 * for a lock: now() is when the transaction began, before a scheduler pass that held the cron
 * may have fired and advanced it.
 */
export async function statementNow(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>(`SELECT clock_timestamp() AS now`);
  return rows[0].now;
}

/** An assistant the user may use: their own or a system one (user_id NULL). */
export async function findAssistant(db: Queryable, assistantId: string, userId: string): Promise<{ assistant_id: string; graph_id: string } | null> {
  const { rows } = await db.query<{ assistant_id: string; graph_id: string }>(
    `SELECT assistant_id, graph_id FROM assistants WHERE assistant_id = $1 AND (user_id IS NULL OR user_id = $2)`,
    [assistantId, userId],
  );
  return rows[0] ?? null;
}

/** Whether the user owns the thread; FOR KEY SHARE keeps it from being deleted under the new cron. */
export async function ownsThread(db: Queryable, threadId: string, userId: string): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM threads WHERE thread_id = $1 AND user_id = $2 FOR KEY SHARE`, [threadId, userId]);
  return (rowCount ?? 0) > 0;
}

/** Creates the user's thread when no thread has that id (if_not_exists: "create"). */
export async function createThreadIfMissing(db: Queryable, threadId: string, userId: string): Promise<void> {
  await db.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, $2) ON CONFLICT (thread_id) DO NOTHING`, [threadId, userId]);
}

/**
 * How many crons the user owns (disabled ones included), after taking the user's advisory lock:
 * two concurrent creates of one user queue here, so the per-user cap holds under races. The
 * number is the user's row of cron_user_counts, which triggers keep exact on every insert,
 * delete and change of owner (migrations/007_cron_search_indexes.sql): one row read, whatever
 * the user owns, instead of a count(*) of their crons while the lock is held. Read after the
 * lock, it includes every create that held it before (they committed before releasing it).
 */
export async function lockAndCountUserCrons(client: PoolClient, userId: string): Promise<number> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('agentcron.crons.user:' || $1))`, [userId]);
  return ownedCrons(client, userId);
}

/** The user's crons, from their cron_user_counts row (0 without one). */
async function ownedCrons(db: Queryable, userId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT coalesce((SELECT n FROM cron_user_counts WHERE user_id = $1), 0)::int AS n`, [userId]);
  return rows[0].n;
}

/** A cron as the API creates it: every stored column except those the database and the workers set. */
export type NewCron = Omit<
  CronRow,
  'fired_through' | 'finished_at' | 'last_run_at' | 'last_run_status' | 'last_run_error' | 'last_run_id' | 'created_at' | 'updated_at'
>;

export async function insertCron(db: Queryable, c: NewCron): Promise<CronRow> {
  const { rows } = await db.query<CronRow>(
    `INSERT INTO crons AS c (cron_id, assistant_id, thread_id, user_id, schedule, timezone, end_time, enabled, on_run_completed,
                             payload, metadata, next_run_date, missed_policy, overlap_policy, paused_reason, jitter_seconds)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
     RETURNING ${CRON_COLUMNS}`,
    [
      c.cron_id,
      c.assistant_id,
      c.thread_id,
      c.user_id,
      c.schedule,
      c.timezone,
      c.end_time,
      c.enabled,
      c.on_run_completed,
      JSON.stringify(c.payload),
      JSON.stringify(c.metadata),
      c.next_run_date,
      c.missed_policy,
      c.overlap_policy,
      c.paused_reason,
      c.jitter_seconds,
    ],
  );
  return rows[0];
}

/** The user's cron with its graph id, or null; `lock` holds the row (FOR UPDATE) until the transaction ends. */
export async function getCron(db: Queryable, cronId: string, userId: string, opts: { lock?: boolean } = {}): Promise<CronWithGraph | null> {
  const { rows } = await db.query<CronWithGraph>(
    `SELECT ${CRON_COLUMNS}, a.graph_id
       FROM crons c JOIN assistants a USING (assistant_id)
      WHERE c.cron_id = $1 AND c.user_id = $2
      ${opts.lock ? 'FOR UPDATE OF c' : ''}`,
    [cronId, userId],
  );
  return rows[0] ?? null;
}

export interface CronFilters {
  assistant_id?: string | null;
  thread_id?: string | null;
  enabled?: boolean | null;
  metadata?: Record<string, unknown> | null;
  /** agentcron: crons whose id starts with these hex digits (8 or more; dashes ignored). */
  cron_id_prefix?: string | null;
}

/** The uuid range [lo, hi] of the ids starting with a hex prefix (dashes ignored), for the primary key's index. */
export function idPrefixRange(prefix: string): [string, string] {
  const hex = prefix.replace(/-/g, '').toLowerCase();
  const uuid = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  return [uuid(hex.padEnd(32, '0')), uuid(hex.padEnd(32, 'f'))];
}

/**
 * WHERE clause and parameters for crons matching the filters, of one owner ($1) or of everyone
 * (userId null: the admin routes).
 */
export function cronsWhere(userId: string | null, f: CronFilters): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const clauses: string[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    clauses.push(sql.replace('?', `$${params.length}`));
  };
  if (userId != null) add('c.user_id = ?', userId);
  if (f.assistant_id != null) add('c.assistant_id = ?::uuid', f.assistant_id);
  if (f.thread_id != null) add('c.thread_id = ?::uuid', f.thread_id);
  if (f.enabled != null) add('c.enabled = ?', f.enabled);
  // jsonb containment. No GIN index (see migrations/002_domain.sql): the search reads the owner's
  // rows in its sort's index order until the page is full, so a rare match reads many rows.
  if (f.metadata != null) add('c.metadata @> ?::jsonb', JSON.stringify(f.metadata));
  if (f.cron_id_prefix != null) {
    const [lo, hi] = idPrefixRange(f.cron_id_prefix);
    add('c.cron_id >= ?::uuid', lo);
    add('c.cron_id <= ?::uuid', hi);
  }
  return { where: clauses.length ? clauses.join(' AND ') : 'true', params };
}

export type CronSortKey = 'cron_id' | 'assistant_id' | 'thread_id' | 'created_at' | 'updated_at' | 'next_run_date' | 'end_time';

export interface CronSearch extends CronFilters {
  sort_by: CronSortKey;
  sort_order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** The column of each sort key the search offers (whitelisted: only these are spliced into SQL). */
export const SORT_COLUMNS: Record<CronSortKey, string> = {
  cron_id: 'c.cron_id',
  assistant_id: 'c.assistant_id',
  thread_id: 'c.thread_id',
  created_at: 'c.created_at',
  updated_at: 'c.updated_at',
  next_run_date: 'c.next_run_date',
  end_time: 'c.end_time',
};

/**
 * Sort keys the table never holds NULL in (NOT NULL columns). "Nulls last" is moot for them, so
 * their ORDER BY leaves NULLS to the default, which is what an index scan on (user_id, key,
 * cron_id) yields in either direction: DESC NULLS LAST would match no index and sort every row.
 */
const NOT_NULL_SORTS: ReadonlySet<CronSortKey> = new Set(['cron_id', 'assistant_id', 'created_at', 'updated_at']);

/**
 * Nullable sort keys with a (user_id, key, cron_id) index (migrations/007_cron_search_indexes.sql).
 * Ascending, nulls last is the index's order; descending with nulls last is read as two ranges of
 * it, the non-null rows then the null ones.
 */
const INDEXED_NULLABLE_SORTS: ReadonlySet<CronSortKey> = new Set(['next_run_date']);

/**
 * The user's crons matching the filters, with the database's now (for `select: ["now"]`).
 * Ordered by the sort key, nulls last either way (no end_time, finished crons, stateless crons),
 * then by cron_id in the same direction, which makes pages stable. The ORDER BY is written so
 * that the indexes of migrations/007 serve the default sort (created_at desc), updated_at and
 * next_run_date in both directions, and cron_id (the primary key), reading only the page.
 */
export async function searchCrons(db: Queryable, userId: string, s: CronSearch): Promise<{ crons: CronRow[]; now: Date }> {
  const { where, params } = cronsWhere(userId, s);
  const direction = s.sort_order === 'asc' ? 'ASC' : 'DESC';
  const key = SORT_COLUMNS[s.sort_by];
  const tieBreak = s.sort_by === 'cron_id' ? '' : `, c.cron_id ${direction}`;
  let sql: string;
  if (NOT_NULL_SORTS.has(s.sort_by) || direction === 'ASC') {
    // ASC is NULLS LAST by default; a NOT NULL key has no nulls to place.
    params.push(s.limit, s.offset);
    sql = `SELECT ${CRON_COLUMNS}, now() AS now FROM crons c WHERE ${where}
            ORDER BY ${key} ${direction}${tieBreak} LIMIT $${params.length - 1} OFFSET $${params.length}`;
  } else if (INDEXED_NULLABLE_SORTS.has(s.sort_by)) {
    // DESC NULLS LAST: the non-null rows (a backward scan of the index), then the null rows (the
    // index's null range, backward: by cron_id DESC). Each part reads at most limit + offset rows.
    params.push(s.limit + s.offset, s.limit, s.offset);
    const [upTo, limit, offset] = [params.length - 2, params.length - 1, params.length];
    sql = `SELECT ${CRON_COLUMNS}, now() AS now FROM (
             (SELECT c.* FROM crons c WHERE ${where} AND ${key} IS NOT NULL ORDER BY ${key} DESC, c.cron_id DESC LIMIT $${upTo})
             UNION ALL
             (SELECT c.* FROM crons c WHERE ${where} AND ${key} IS NULL ORDER BY ${key} DESC, c.cron_id DESC LIMIT $${upTo})
           ) c
           ORDER BY ${key} DESC NULLS LAST, c.cron_id DESC LIMIT $${limit} OFFSET $${offset}`;
  } else {
    // thread_id or end_time descending: no index, the owner's matching rows are sorted.
    params.push(s.limit, s.offset);
    sql = `SELECT ${CRON_COLUMNS}, now() AS now FROM crons c WHERE ${where}
            ORDER BY ${key} DESC NULLS LAST${tieBreak} LIMIT $${params.length - 1} OFFSET $${params.length}`;
  }
  const { rows } = await db.query<CronRow & { now: Date }>(sql, params);
  return { crons: rows, now: rows[0]?.now ?? new Date() };
}

/** How many of the user's crons match the filters; without filters, their cron_user_counts row (no scan). */
export async function countCrons(db: Queryable, userId: string, f: CronFilters): Promise<number> {
  if (f.assistant_id == null && f.thread_id == null && f.enabled == null && f.metadata == null) return ownedCrons(db, userId);
  const { where, params } = cronsWhere(userId, f);
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM crons c WHERE ${where}`, params);
  return rows[0].n;
}

/** A cron's new state after an update; payload keys in `payload_remove` are dropped after merging `payload_set`. */
export interface CronChanges {
  schedule: string;
  timezone: string | null;
  end_time: Date | null;
  enabled: boolean;
  on_run_completed: OnRunCompleted | null;
  metadata: Record<string, unknown>;
  payload_set: Record<string, unknown>;
  payload_remove: string[];
  next_run_date: Date | null;
  finished_at: Date | null;
  missed_policy: MissedPolicy;
  overlap_policy: OverlapPolicy;
  /** The pause note; null when enabled. */
  paused_reason: string | null;
  jitter_seconds: number;
}

/**
 * Writes an update decided by the caller (who holds the row lock). The payload merges in SQL so
 * the stored body is never rebuilt from a stale copy. The crons_changed trigger wakes schedulers.
 */
export async function updateCron(db: Queryable, cronId: string, userId: string, ch: CronChanges): Promise<CronRow> {
  const { rows } = await db.query<CronRow>(
    `UPDATE crons c
        SET schedule = $3, timezone = $4, end_time = $5, enabled = $6, on_run_completed = $7, metadata = $8::jsonb,
            payload = (c.payload || $9::jsonb) - $10::text[], next_run_date = $11, finished_at = $12,
            missed_policy = $13, overlap_policy = $14, paused_reason = $15, jitter_seconds = $16, updated_at = now()
      WHERE c.cron_id = $1 AND c.user_id = $2
      RETURNING ${CRON_COLUMNS}`,
    [
      cronId,
      userId,
      ch.schedule,
      ch.timezone,
      ch.end_time,
      ch.enabled,
      ch.on_run_completed,
      JSON.stringify(ch.metadata),
      JSON.stringify(ch.payload_set),
      ch.payload_remove,
      ch.next_run_date,
      ch.finished_at,
      ch.missed_policy,
      ch.overlap_policy,
      ch.paused_reason,
      ch.jitter_seconds,
    ],
  );
  return rows[0];
}

/**
 * Deletes the user's cron and its ledger; false when there is none. Its runs are left alone (runs
 * have no foreign key to crons): those already enqueued finish, and nothing new is enqueued since
 * schedulers only claim existing crons. The lock order: the cron (gone), then its ledger rows in
 * key order (held, which the ledger's DELETE reads, so it runs after gone and before that DELETE).
 */
export async function deleteCron(db: Queryable, cronId: string, userId: string): Promise<boolean> {
  const { rows } = await db.query<{ cron_id: string }>(
    `WITH gone AS (DELETE FROM crons WHERE cron_id = $1 AND user_id = $2 RETURNING cron_id),
          held AS (SELECT o.cron_id, o.scheduled_for FROM cron_occurrences o
                    WHERE o.cron_id IN (SELECT cron_id FROM gone) ORDER BY o.scheduled_for FOR UPDATE),
          ledger AS (DELETE FROM cron_occurrences o USING held WHERE o.cron_id = held.cron_id AND o.scheduled_for = held.scheduled_for)
     SELECT cron_id FROM gone`,
    [cronId, userId],
  );
  return rows.length > 0;
}

export interface OccurrenceRow {
  cron_id: string;
  scheduled_for: Date;
  run_id: string | null;
  thread_id: string | null;
  trigger: string;
  status: string;
  reason: string | null;
  error: string | null;
  skipped_count: number;
  enqueued_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  created_at: Date;
  /** Delivery of the run's webhook (migrations/004_webhooks.sql): null when the run has none, pending, sent or failed. */
  webhook_status: string | null;
  webhook_attempts: number;
  webhook_error: string | null;
  webhook_sent_at: Date | null;
  /** Excerpts of the run's final values and error (migrations/008; LEDGER_OUTPUT_EXCERPT_BYTES). */
  output_excerpt: string | null;
  output_truncated: boolean;
  error_excerpt: string | null;
  error_truncated: boolean;
  /** Retries of this occurrence (POST .../retry) and when the last one was asked for. */
  retries: number;
  retried_at: Date | null;
  /** With jitter: when it was planned to start (migrations/011); null: at scheduled_for. */
  planned_for: Date | null;
  /** The ledger's copy of the earlier attempts (null when it ran once). */
  attempt_log: unknown[] | null;
  /** The occurrence's run as it is now (null once it is gone: an ended ephemeral run is deleted). */
  run_status: string | null;
  run_started_at: Date | null;
  run_attempt_log: unknown[] | null;
  run_waiting: string | null;
  run_not_before: Date | null;
}

/**
 * A page of a cron's ledger, newest occurrence first (the caller has checked ownership), with the
 * occurrence's run while it exists: a run waiting (for a retry or a limit) says why from there.
 */
export async function listOccurrences(db: Queryable, cronId: string, limit: number, offset: number): Promise<OccurrenceRow[]> {
  const { rows } = await db.query<OccurrenceRow>(
    `SELECT o.cron_id, o.scheduled_for, o.run_id, o.thread_id, o.trigger, o.status, o.reason, o.error, o.skipped_count,
            o.enqueued_at, o.started_at, o.ended_at, o.created_at, o.webhook_status, o.webhook_attempts, o.webhook_error, o.webhook_sent_at,
            o.output_excerpt, o.output_truncated, o.error_excerpt, o.error_truncated, o.retries, o.retried_at,
            o.planned_for, o.attempt_log,
            r.status AS run_status, r.started_at AS run_started_at, r.attempt_log AS run_attempt_log,
            r.waiting AS run_waiting, r.not_before AS run_not_before
       FROM (SELECT * FROM cron_occurrences WHERE cron_id = $1 ORDER BY scheduled_for DESC LIMIT $2 OFFSET $3) o
       LEFT JOIN runs r ON r.run_id = o.run_id
      ORDER BY o.scheduled_for DESC`,
    [cronId, limit, offset],
  );
  return rows;
}

/**
 * The attempts of an occurrence: from its run while the run exists (it logs each attempt as it
 * ends), else from the ledger's copy. attempts counts the earlier ones plus the current one once
 * it has started.
 */
function occurrenceAttempts(o: OccurrenceRow): { attempts: number; attempt_log: unknown[] } {
  if (o.run_status !== null) {
    const log = o.run_attempt_log ?? o.attempt_log ?? [];
    return { attempts: attemptsMade(log, o.run_status !== 'pending' && o.run_started_at !== null), attempt_log: log };
  }
  const log = o.attempt_log ?? [];
  return { attempts: attemptsMade(log, o.status !== 'enqueued' && o.status !== 'skipped' && o.started_at !== null), attempt_log: log };
}

export function toOccurrenceResponse(o: OccurrenceRow) {
  const pending = o.run_status === 'pending';
  return {
    cron_id: o.cron_id,
    scheduled_for: o.scheduled_for.toISOString(),
    run_id: o.run_id,
    thread_id: o.thread_id,
    trigger: o.trigger,
    status: o.status,
    reason: o.reason,
    error: o.error,
    skipped_count: o.skipped_count,
    enqueued_at: iso(o.enqueued_at),
    started_at: iso(o.started_at),
    ended_at: iso(o.ended_at),
    created_at: o.created_at.toISOString(),
    webhook_status: o.webhook_status,
    webhook_attempts: o.webhook_attempts,
    webhook_error: o.webhook_error,
    webhook_sent_at: iso(o.webhook_sent_at),
    output_excerpt: o.output_excerpt,
    output_truncated: o.output_truncated,
    error_excerpt: o.error_excerpt,
    error_truncated: o.error_truncated,
    retries: o.retries,
    retried_at: iso(o.retried_at),
    planned_for: iso(o.planned_for ?? o.scheduled_for),
    ...occurrenceAttempts(o),
    waiting: pending ? o.run_waiting : null,
    not_before: pending ? iso(o.run_not_before) : null,
  };
}

/** An instant as ISO 8601 wall-clock time in `timezone`, with its UTC offset: 2030-03-10T03:00:00-04:00. */
export function localIso(at: Date, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(at);
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  const offsetMin = Math.round((wall - Math.floor(at.getTime() / 1000) * 1000) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  const ms = at.getUTCMilliseconds();
  const frac = ms ? `.${String(ms).padStart(3, '0')}` : '';
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}${frac}${offset}`;
}
