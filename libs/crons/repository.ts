import type { PoolClient, Queryable } from '../db/index.ts';
import type { MissedPolicy } from '../firing/index.ts';
import type { CronPayload, CronRow, OnRunCompleted, OverlapPolicy } from './types.ts';

// SQL of the crons API on the crons table (the search and count in search.ts, the ledger in
// occurrences.ts). Every query that reads or changes a cron filters on its owner: another
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

/**
 * The earliest occurrence of the cron fired ahead (CRON_LOOKAHEAD_MS) whose instant has not come:
 * its run is pending with a scheduled_for after now (no trigger, create or backfill makes one).
 * The cron's next occurrence as users see it (answers.ts shownNextRunDate), not next_run_date.
 */
export const AHEAD_NEXT = `(SELECT min(r.scheduled_for) FROM runs r
  WHERE r.cron_id = c.cron_id AND r.status = 'pending' AND r.scheduled_for > now()) AS ahead_next`;

// The cron's last_run_* from its cron_last_runs row (migrations/024; none: it never ran): a probe
// of its primary key each, so CRON_COLUMNS also serves the RETURNING of an INSERT or UPDATE.
const lastRun = (column: string) => `(SELECT l.${column} FROM cron_last_runs l WHERE l.cron_id = c.cron_id) AS ${column}`;

export const CRON_COLUMNS = `c.cron_id, c.assistant_id, c.thread_id, c.user_id, c.schedule, c.timezone, c.end_time, c.enabled, c.paused_reason,
  c.on_run_completed, c.payload, c.metadata, c.next_run_date, c.fired_through, c.missed_policy, c.overlap_policy, c.jitter_seconds, c.finished_at,
  ${['last_run_at', 'last_run_status', 'last_run_error', 'last_run_id'].map(lastRun).join(', ')}, c.created_at, c.updated_at, ${AHEAD_NEXT}`;

export const iso = (d: Date | null) => (d ? d.toISOString() : null);

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
  return ownedCronCount(client, userId);
}

/** The user's crons, from their cron_user_counts row (0 without one). */
export async function ownedCronCount(db: Queryable, userId: string): Promise<number> {
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
