import { randomUUID } from 'node:crypto';
import type { PoolClient, Queryable } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import type { WebhookRun } from '../webhooks/index.ts';
import { insertRuns } from './enqueue.ts';
import type { MultitaskStrategy } from './enqueue.ts';

/**
 * A run as the LangGraph API shows it (plus cron_id and scheduled_for for cron runs): the fields a
 * webhook reports (libs/webhooks), with the delivery's bookkeeping instead of the values.
 */
export interface RunResponse extends Omit<WebhookRun, 'run_ended_at' | 'values' | 'error'> {
  run_ended_at: string | null;
  error: unknown;
  /** When the webhook was delivered (null: no webhook, or not delivered yet). */
  webhook_sent_at: string | null;
  /** null (no webhook), pending, sent or failed. */
  webhook_status: string | null;
  webhook_attempts: number;
  /** Why the last delivery attempt failed (a short excerpt of the answer at most). */
  webhook_error: string | null;
  /** Attempts of the agent so far (docs/flow-control.md): the earlier ones plus the current one once it started. */
  attempts: number;
  /** The earlier attempts, oldest first ([] when none): start, end, status, error, when the next was due. */
  attempt_log: unknown[];
  /** Why a pending run is not executing: retry, limit:<name>, or null (due and waiting for a worker, or not yet due). */
  waiting: string | null;
  /** A pending run waiting for a retry: its next attempt starts no sooner. */
  not_before: string | null;
}

const RUN_COLUMNS = `run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy,
  kwargs, cron_id, scheduled_for, started_at, ended_at, error, webhook_sent_at, webhook_status, webhook_attempts, webhook_error,
  attempt_log, waiting, not_before`;

/**
 * Attempts made so far: the earlier attempts logged plus the current one when it has started (a
 * run sent back to wait for its retry is pending again: its next attempt has not started).
 */
export function attemptsMade(attemptLog: unknown, currentStarted: boolean): number {
  return (Array.isArray(attemptLog) ? attemptLog.length : 0) + (currentStarted ? 1 : 0);
}

interface RunRow {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: Date;
  updated_at: Date;
  status: string;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  error: unknown;
  webhook_sent_at: Date | null;
  webhook_status: string | null;
  webhook_attempts: number;
  webhook_error: string | null;
  attempt_log: unknown[] | null;
  waiting: string | null;
  not_before: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toRunResponse(r: RunRow): RunResponse {
  return {
    run_id: r.run_id,
    thread_id: r.thread_id,
    assistant_id: r.assistant_id,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    status: r.status,
    metadata: r.metadata,
    multitask_strategy: r.multitask_strategy,
    kwargs: r.kwargs,
    cron_id: r.cron_id,
    scheduled_for: iso(r.scheduled_for),
    run_started_at: iso(r.started_at),
    run_ended_at: iso(r.ended_at),
    error: r.error,
    webhook_sent_at: iso(r.webhook_sent_at),
    webhook_status: r.webhook_status,
    webhook_attempts: r.webhook_attempts,
    webhook_error: r.webhook_error,
    attempts: attemptsMade(r.attempt_log, r.status !== 'pending' && r.started_at !== null),
    attempt_log: r.attempt_log ?? [],
    // Only a pending run waits; a stale reason on a run that has moved on is not shown.
    waiting: r.status === 'pending' ? r.waiting : null,
    not_before: r.status === 'pending' ? iso(r.not_before) : null,
  };
}

/** The caller's run, or null (another user's run is as absent as a missing one). */
export async function getRun(db: Queryable, runId: string, userId: string): Promise<RunResponse | null> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE run_id = $1 AND user_id = $2`, [runId, userId]);
  return rows[0] ? toRunResponse(rows[0]) : null;
}

// ---- a thread's runs, as the API reads, creates, cancels and joins them ----

/** The caller's run on the caller's thread, or null. */
export async function getThreadRun(db: Queryable, threadId: string, runId: string, userId: string): Promise<RunResponse | null> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE run_id = $1 AND thread_id = $2 AND user_id = $3`, [runId, threadId, userId]);
  return rows[0] ? toRunResponse(rows[0]) : null;
}

/** A thread's runs, newest first (the caller must own the thread: checked by the route). */
export async function listThreadRuns(
  db: Queryable,
  threadId: string,
  userId: string,
  page: { limit: number; offset: number; status?: string | null },
): Promise<RunResponse[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM runs
      WHERE thread_id = $1 AND user_id = $2 AND ($3::text IS NULL OR status = $3)
      ORDER BY created_at DESC, run_id
      LIMIT $4 OFFSET $5`,
    [threadId, userId, page.status ?? null, page.limit, page.offset],
  );
  return rows.map(toRunResponse);
}

/** Ids of a thread's runs that have not ended. */
export async function activeThreadRunIds(db: Queryable, threadId: string): Promise<string[]> {
  const { rows } = await db.query<{ run_id: string }>(`SELECT run_id FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running')`, [threadId]);
  return rows.map((r) => r.run_id);
}

export interface BackgroundRun {
  thread_id: string;
  assistant_id: string;
  user_id: string;
  kwargs: Record<string, unknown>;
  metadata: Record<string, unknown>;
  multitask_strategy: MultitaskStrategy;
  /** Start no sooner than this many seconds after the run is created (LangGraph's after_seconds). */
  after_seconds?: number | null;
}

/**
 * Writes a manual run on a thread and enqueues it, in the caller's transaction (which must hold
 * the thread's lock). Runs of one thread are serialised by the queue, so an `enqueue` run waits
 * for the ones before it. With after_seconds, the job becomes available that long after the
 * run's created_at (both on the database clock: the transaction's now()); until then the run is
 * pending. No NOTIFY marks that instant, so a worker takes it at its next poll after it (the run
 * worker's backstop poll is 10 s while LISTEN/NOTIFY works), or sooner when other runs arrive.
 */
export async function insertBackgroundRun(client: PoolClient, boss: PgBoss, run: BackgroundRun): Promise<RunResponse> {
  const runId = randomUUID();
  let startAfter: Date | undefined;
  if (run.after_seconds) {
    const { rows } = await client.query<{ at: Date }>(`SELECT now() + make_interval(secs => $1) AS at`, [run.after_seconds]);
    startAfter = rows[0].at;
  }
  await insertRuns(client, boss, [
    {
      run_id: runId,
      thread_id: run.thread_id,
      assistant_id: run.assistant_id,
      user_id: run.user_id,
      cron_id: null,
      scheduled_for: null,
      kwargs: run.kwargs,
      multitask_strategy: run.multitask_strategy,
      metadata: run.metadata,
      serialize_key: run.thread_id,
      start_after: startAfter,
    },
  ]);
  const created = await getRun(client, runId, run.user_id);
  return created!;
}

const ENDED = new Set(['success', 'error', 'timeout', 'interrupted']);
export const runEnded = (status: string): boolean => ENDED.has(status);

/**
 * Waits until the caller's run ends, polling with a growing interval (50 ms up to 1 s): answers
 * the ended run, null when it no longer exists (deleted with its thread), or the run still going
 * once maxWaitMs has passed or the signal aborts (the client went away).
 */
export async function waitForRunEnd(
  db: Queryable,
  threadId: string,
  runId: string,
  userId: string,
  opts: { maxWaitMs: number; signal?: AbortSignal },
): Promise<RunResponse | null> {
  const deadline = Date.now() + opts.maxWaitMs;
  let delay = 50;
  for (;;) {
    const run = await getThreadRun(db, threadId, runId, userId);
    if (!run || runEnded(run.status) || Date.now() >= deadline || opts.signal?.aborted) return run;
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), opts.signal);
    delay = Math.min(delay * 2, 1000);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A run as its stream reads it: the run, its graph, and where its LangGraph checkpoints lie on the
 * thread's timeline. Runs of a thread never overlap, so the run's checkpoints are those written
 * after the runs started before it had ended (`previous_ended_at`, null when none did) and, once
 * a later run has started (`later_started`), no later than its own end.
 */
export interface RunStreamPosition {
  run: RunResponse;
  graph_id: string;
  attempts: number;
  previous_ended_at: Date | null;
  later_started: boolean;
}

export async function runStreamPosition(db: Queryable, threadId: string, runId: string, userId: string): Promise<RunStreamPosition | null> {
  const { rows } = await db.query<RunRow & { graph_id: string; attempts: number; previous_ended_at: Date | null; later_started: boolean }>(
    `SELECT ${RUN_COLUMNS.replace(/(\w+)/g, 'r.$1')}, r.attempts, a.graph_id,
            (SELECT max(p.ended_at) FROM runs p
              WHERE p.thread_id = r.thread_id AND p.run_id <> r.run_id AND p.started_at IS NOT NULL AND p.started_at < r.started_at) AS previous_ended_at,
            EXISTS (SELECT 1 FROM runs n
              WHERE n.thread_id = r.thread_id AND n.run_id <> r.run_id AND n.started_at >= r.started_at) AS later_started
       FROM runs r JOIN assistants a USING (assistant_id)
      WHERE r.run_id = $1 AND r.thread_id = $2 AND r.user_id = $3`,
    [runId, threadId, userId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    run: toRunResponse(row),
    graph_id: row.graph_id,
    attempts: row.attempts,
    previous_ended_at: row.previous_ended_at,
    later_started: row.later_started,
  };
}

/** A thread's values, as a join answers them once its run has ended. */
export async function threadValues(db: Queryable, threadId: string): Promise<unknown> {
  const { rows } = await db.query<{ values: unknown }>(`SELECT "values" FROM threads WHERE thread_id = $1`, [threadId]);
  return rows[0]?.values ?? {};
}

/** Deletes an ended run of the caller's; 'active' when it has not ended (cancel it first). */
export async function deleteEndedRun(db: Queryable, threadId: string, runId: string, userId: string): Promise<'deleted' | 'missing' | 'active'> {
  const { rows } = await db.query<{ status: string }>(
    `WITH target AS (SELECT run_id, status FROM runs WHERE run_id = $1 AND thread_id = $2 AND user_id = $3),
          gone AS (DELETE FROM runs r USING target t WHERE r.run_id = t.run_id AND t.status NOT IN ('pending', 'running') RETURNING r.run_id)
     SELECT t.status FROM target t`,
    [runId, threadId, userId],
  );
  if (!rows[0]) return 'missing';
  return runEnded(rows[0].status) ? 'deleted' : 'active';
}

// ---- runs across threads and crons (GET /runs, an agentcron extension) ----

/** Filters of a run listing; each one given narrows it (the owner's runs; null owner: everyone's). */
export interface RunFilters {
  user_id: string | null;
  statuses?: string[] | null;
  cron_id?: string | null;
  assistant_id?: string | null;
  thread_id?: string | null;
  created_after?: Date | null;
  created_before?: Date | null;
}

/** A run of a listing: the run as every route answers it, with its owner. */
export type ListedRun = RunResponse & { user_id: string };

/**
 * Runs matching the filters, newest first (created_at, then run_id), a page at a time: stateless
 * runs, thread runs and cron runs alike. The answer is toRunResponse's, so a field added to every
 * run answer is here too.
 */
export async function listRuns(db: Queryable, f: RunFilters, page: { limit: number; offset: number }): Promise<ListedRun[]> {
  const params: unknown[] = [];
  const clauses: string[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    clauses.push(sql.replace('?', `$${params.length}`));
  };
  if (f.user_id !== null) add('user_id = ?', f.user_id);
  if (f.statuses?.length) add('status = ANY(?::text[])', f.statuses);
  if (f.cron_id != null) add('cron_id = ?::uuid', f.cron_id);
  if (f.assistant_id != null) add('assistant_id = ?::uuid', f.assistant_id);
  if (f.thread_id != null) add('thread_id = ?::uuid', f.thread_id);
  if (f.created_after != null) add('created_at >= ?', f.created_after);
  if (f.created_before != null) add('created_at < ?', f.created_before);
  params.push(page.limit, page.offset);
  const { rows } = await db.query<RunRow & { user_id: string }>(
    `SELECT ${RUN_COLUMNS}, user_id FROM runs
      WHERE ${clauses.length ? clauses.join(' AND ') : 'true'}
      ORDER BY created_at DESC, run_id DESC
      LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return rows.map((r) => ({ ...toRunResponse(r), user_id: r.user_id }));
}

/** One run of the owner's (any owner's with null) with its output, for a run's page; null when absent. */
export async function getRunWithOutput(db: Queryable, runId: string, userId: string | null): Promise<(ListedRun & { output: unknown }) | null> {
  const { rows } = await db.query<RunRow & { user_id: string; output: unknown }>(
    `SELECT ${RUN_COLUMNS}, user_id, output FROM runs WHERE run_id = $1 AND ($2::text IS NULL OR user_id = $2)`,
    [runId, userId],
  );
  const r = rows[0];
  return r ? { ...toRunResponse(r), user_id: r.user_id, output: r.output } : null;
}
