import type { PoolClient, Queryable } from '../db/index.ts';
import { SORT_COLUMNS as OWNER_SORT_COLUMNS, cronsWhere, pageKeys, pageOf, sortOrder } from './search.ts';
import { CRON_COLUMNS } from './repository.ts';
import type { CronWithGraph } from './repository.ts';
import type { CronSortKey } from './search.ts';
import type { CronRow } from './types.ts';

// Crons across owners and in bulk: what admin keys see and manage (every user's crons, moving
// crons from one user to another) and the bulk operations of owners and admins (disable,
// enable, delete every cron matching a filter). The per-owner queries of the API stay in
// repository.ts; these take the owner as a filter, null meaning every owner.
//
// Locks follow libs/runs/lifecycle.ts: crons by cron_id, then threads by thread_id, then runs by
// run_id, then ledger rows by (cron_id, scheduled_for), each taken by a locking SELECT ... ORDER
// BY key before the writes; assistant rows last (as deleting an assistant does, after its crons
// and runs).

/** Which crons: an owner (null: every owner's) and the API's filters. */
export interface CronScope {
  user_id: string | null;
  assistant_id?: string | null;
  thread_id?: string | null;
  enabled?: boolean | null;
  metadata?: Record<string, unknown> | null;
  cron_id_prefix?: string | null;
}

function scopeWhere(s: CronScope): { where: string; params: unknown[] } {
  return cronsWhere(s.user_id ?? null, s);
}

// The owner's sort keys, and the owner itself for the admin routes.
const SORT_COLUMNS: Record<CronSortKey | 'user_id', string> = { ...OWNER_SORT_COLUMNS, user_id: 'c.user_id' };

export interface ScopedSearch extends CronScope {
  sort_by: CronSortKey | 'user_id';
  sort_order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** Crons in the scope (every owner's when user_id is null), with the database's now. */
export async function searchScopedCrons(db: Queryable, s: ScopedSearch): Promise<{ crons: CronRow[]; now: Date }> {
  const { where, params } = scopeWhere(s);
  const key = SORT_COLUMNS[s.sort_by];
  const order = sortOrder(s.sort_order === 'asc' ? 'ASC' : 'DESC', ' NULLS LAST');
  params.push(s.limit, s.offset);
  // The page's keys first, then only its rows whole with CRON_COLUMNS (search.ts pageOf).
  const keys = `SELECT ${pageKeys(key)} FROM crons c WHERE ${where} ORDER BY ${order(key, 'c.cron_id')} LIMIT $${params.length - 1} OFFSET $${params.length}`;
  const { rows } = await db.query<CronRow & { now: Date }>(pageOf(keys, key, order), params);
  const now = rows[0]?.now ?? (await db.query<{ now: Date }>(`SELECT now() AS now`)).rows[0].now;
  return { crons: rows, now };
}

export async function countScopedCrons(db: Queryable, s: CronScope): Promise<number> {
  const { where, params } = scopeWhere(s);
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM crons c WHERE ${where}`, params);
  return rows[0].n;
}

/** Whose cron this is (null: no such cron). */
export async function cronOwner(db: Queryable, cronId: string): Promise<string | null> {
  const { rows } = await db.query<{ user_id: string }>(`SELECT user_id FROM crons WHERE cron_id = $1`, [cronId]);
  return rows[0]?.user_id ?? null;
}

/** Locks the crons in the scope, sorted by cron_id (lock order step 1), and answers them with their graph. */
export async function lockScopedCrons(client: PoolClient, s: CronScope): Promise<CronWithGraph[]> {
  const { where, params } = scopeWhere(s);
  const { rows } = await client.query<CronWithGraph>(
    `SELECT ${CRON_COLUMNS}, a.graph_id
       FROM crons c JOIN assistants a USING (assistant_id)
      WHERE ${where}
      ORDER BY c.cron_id
      FOR UPDATE OF c`,
    params,
  );
  return rows;
}

/** A cron's state after a bulk enable or disable (decided by the caller, who holds the locks). */
export interface CronState {
  cron_id: string;
  enabled: boolean;
  next_run_date: Date | null;
  finished_at: Date | null;
  /** The pause note (null when enabled). */
  paused_reason: string | null;
}

/** Writes enable/disable decisions in one statement; rows whose state does not change are not touched. */
export async function setCronStates(client: PoolClient, states: CronState[]): Promise<void> {
  if (states.length === 0) return;
  await client.query(
    `UPDATE crons c
        SET enabled = v.enabled, next_run_date = v.next_run_date, finished_at = v.finished_at, paused_reason = v.paused_reason, updated_at = now()
       FROM unnest($1::uuid[], $2::boolean[], $3::timestamptz[], $4::timestamptz[], $5::text[])
            AS v(cron_id, enabled, next_run_date, finished_at, paused_reason)
      WHERE c.cron_id = v.cron_id
        AND (c.enabled, c.next_run_date, c.finished_at, c.paused_reason) IS DISTINCT FROM (v.enabled, v.next_run_date, v.finished_at, v.paused_reason)`,
    [
      states.map((s) => s.cron_id),
      states.map((s) => s.enabled),
      states.map((s) => s.next_run_date),
      states.map((s) => s.finished_at),
      states.map((s) => s.paused_reason),
    ],
  );
}

/**
 * Deletes crons the caller has locked (lockScopedCrons) with their ledger rows, as the single
 * DELETE does (repository.ts deleteCron): the ledger rows are locked in key order first. Runs
 * already started are left to finish. Answers how many crons went.
 */
export async function deleteLockedCrons(client: PoolClient, cronIds: string[]): Promise<number> {
  if (cronIds.length === 0) return 0;
  await client.query(`SELECT 1 FROM cron_occurrences WHERE cron_id = ANY($1::uuid[]) ORDER BY cron_id, scheduled_for FOR UPDATE`, [cronIds]);
  const { rows } = await client.query<{ n: number }>(
    `WITH gone AS (DELETE FROM crons WHERE cron_id = ANY($1::uuid[]) RETURNING cron_id),
          ledger AS (DELETE FROM cron_occurrences o USING gone WHERE o.cron_id = gone.cron_id)
     SELECT count(*)::int AS n FROM gone`,
    [cronIds],
  );
  return rows[0].n;
}

export interface Transfer {
  from_user_id: string;
  to_user_id: string;
  /** Only these crons of from_user_id (null: every one of them). */
  cron_ids: string[] | null;
  /** Also move from_user_id's own assistants that the moved crons use. */
  assistants: boolean;
}

export interface TransferResult {
  cron_ids: string[];
  threads: number;
  runs: number;
  assistants: number;
  /** Private assistants of the old owner that moved crons use and that stayed (assistants: false). */
  assistants_kept: string[];
}

/**
 * Moves crons from one user to another, with their threads: a thread cron's thread (and every
 * other cron of the old owner on that thread, so no cron runs on a thread its owner cannot see),
 * the threads a stateless cron's runs made (kept with on_run_completed "keep"), and every run on
 * those threads. The new owner's CRON_MAX_PER_USER is not applied (an operator's decision).
 */
export async function transferCrons(client: PoolClient, t: Transfer): Promise<TransferResult> {
  // 1. crons, sorted: the chosen ones and the old owner's others on their threads.
  const { rows: crons } = await client.query<{ cron_id: string; thread_id: string | null; assistant_id: string }>(
    `WITH chosen AS (
       SELECT cron_id, thread_id FROM crons WHERE user_id = $1 AND ($2::uuid[] IS NULL OR cron_id = ANY($2::uuid[]))
     )
     SELECT c.cron_id, c.thread_id, c.assistant_id FROM crons c
      WHERE c.user_id = $1
        AND (c.cron_id IN (SELECT cron_id FROM chosen) OR c.thread_id IN (SELECT thread_id FROM chosen WHERE thread_id IS NOT NULL))
      ORDER BY c.cron_id
      FOR UPDATE`,
    [t.from_user_id, t.cron_ids],
  );
  const cronIds = crons.map((c) => c.cron_id);
  if (cronIds.length === 0) return { cron_ids: [], threads: 0, runs: 0, assistants: 0, assistants_kept: [] };
  // 2. threads, sorted: bound threads, and the threads the crons' runs were given.
  const { rows: threads } = await client.query<{ thread_id: string }>(
    `SELECT thread_id FROM threads
      WHERE user_id = $1
        AND (thread_id = ANY($2::uuid[]) OR thread_id IN (SELECT thread_id FROM runs WHERE cron_id = ANY($3::uuid[])))
      ORDER BY thread_id
      FOR UPDATE`,
    [t.from_user_id, crons.flatMap((c) => (c.thread_id ? [c.thread_id] : [])), cronIds],
  );
  const threadIds = threads.map((r) => r.thread_id);
  // 3. runs on those threads, sorted.
  const { rows: runs } = await client.query<{ run_id: string }>(
    `SELECT run_id FROM runs WHERE thread_id = ANY($1::uuid[]) AND user_id = $2 ORDER BY run_id FOR UPDATE`,
    [threadIds, t.from_user_id],
  );
  await client.query(`UPDATE crons SET user_id = $2, updated_at = now() WHERE cron_id = ANY($1::uuid[])`, [cronIds, t.to_user_id]);
  await client.query(`UPDATE threads SET user_id = $2 WHERE thread_id = ANY($1::uuid[])`, [threadIds, t.to_user_id]);
  await client.query(`UPDATE runs SET user_id = $2 WHERE run_id = ANY($1::uuid[])`, [runs.map((r) => r.run_id), t.to_user_id]);
  // 4. the old owner's assistants these crons use.
  const used = [...new Set(crons.map((c) => c.assistant_id))];
  const { rows: own } = await client.query<{ assistant_id: string }>(
    `SELECT assistant_id FROM assistants WHERE assistant_id = ANY($1::uuid[]) AND user_id = $2 ORDER BY assistant_id FOR UPDATE`,
    [used, t.from_user_id],
  );
  const ownIds = own.map((a) => a.assistant_id);
  if (t.assistants && ownIds.length > 0) {
    await client.query(`UPDATE assistants SET user_id = $2, updated_at = now() WHERE assistant_id = ANY($1::uuid[])`, [ownIds, t.to_user_id]);
  }
  return {
    cron_ids: cronIds,
    threads: threadIds.length,
    runs: runs.length,
    assistants: t.assistants ? ownIds.length : 0,
    assistants_kept: t.assistants ? [] : ownIds,
  };
}
