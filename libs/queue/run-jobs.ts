// The run queue's jobs beyond pg-boss's own API: enqueued with their runs, handed back, kept
// with a held result, snoozed for a retry, parked under a limit and woken; each statement built in
// libs/queue/sql.ts, fenced by the attempt (retry_count) the caller fetched.
import type { PgBoss } from 'pg-boss';
import type { PoolClient, Queryable } from '../db/index.ts';
import { QUEUES, queueNotifyChannel, queueSchemaOf, transactionDb } from './queue.ts';
import {
  announceDeferredSql,
  deleteWaitingRunJobsSql,
  failedJobsRetrySql,
  handOnHeldRunJobsSql,
  holdRunJobResultSql,
  msUntilDeferredSql,
  parkRunJobsSql,
  requeueRunJobsSql,
  snoozeRunJobsSql,
  wakeParkedRunsSql,
  wakeThreadTurnSql,
} from './sql.ts';

export interface RunJob {
  run_id: string;
  /**
   * A result of an earlier attempt that the schema refused, kept on the job (holdRunJobResult):
   * the next claim stores it instead of running the agent again. Written and read by libs/runs.
   */
  held?: unknown;
}

/**
 * Enqueues run jobs, one per run, job id = run id so a repeated enqueue is a no-op. Pass the
 * transaction's client to make the jobs appear only if the transaction commits.
 * Jobs of one `group` never run at once on any worker (the run worker uses group concurrency 1):
 * that is how runs on one thread queue behind each other (multitask_strategy enqueue). A null group: no serialisation.
 */
export async function enqueueRuns(boss: PgBoss, runs: { run_id: string; group: string | null; start_after?: Date }[], client?: PoolClient): Promise<void> {
  if (runs.length === 0) return;
  await boss.insert(
    QUEUES.run,
    runs.map((r) => ({
      id: r.run_id,
      data: { run_id: r.run_id } satisfies RunJob,
      ...(r.group ? { group: { id: r.group } } : {}),
      ...(r.start_after ? { startAfter: r.start_after } : {}),
    })),
    client ? { db: transactionDb(client) } : undefined,
  );
  // pg-boss's insert wakes the workers only for jobs runnable now; a sleeping worker is told of
  // the others too, so it looks when they fall due (with the insert, in the caller's transaction).
  const now = Date.now();
  if (runs.some((r) => r.start_after && r.start_after.getTime() > now)) {
    const values = [queueNotifyChannel(queueSchemaOf(boss)), [QUEUES.run]];
    if (client) await client.query(announceDeferredSql(), values);
    else await boss.getDb().executeSql(announceDeferredSql(), values);
  }
}

/** Tells the workers of `queues` that jobs of theirs were deferred (deferredPayloadSql): a sleeping worker looks when they fall due. */
export async function announceDeferred(db: Queryable, schema: string, queues: string[]): Promise<void> {
  await db.query(announceDeferredSql(), [queueNotifyChannel(schema), queues]);
}

/**
 * Milliseconds until the earliest job of `queue` deferred to a later start_after becomes runnable
 * (database clock); null when none is.
 */
export async function msUntilDeferred(db: Queryable, schema: string, queue: string): Promise<number | null> {
  const { rows } = await db.query<{ wait_ms: number | null }>(msUntilDeferredSql(schema), [queue]);
  return rows[0]?.wait_ms ?? null;
}

/**
 * Where pg-boss's retries of jobs a worker failed stand (a handler's 'failed' result, which pg-boss
 * writes after the handler returns, on its own connection: on a loaded machine, later). Per job
 * found: `written` once pg-boss has written the failure, then `waitMs` until the retry is fetchable
 * (0: now), null when none waits (failed for good, or fetched again). A job not found is gone.
 */
export async function failedJobsRetry(
  db: Queryable,
  schema: string,
  queue: string,
  jobs: { id: string; retryCount: number }[],
): Promise<{ id: string; written: boolean; waitMs: number | null }[]> {
  if (jobs.length === 0) return [];
  const { rows } = await db.query<{ id: string; written: boolean; wait_ms: number | null }>(failedJobsRetrySql(schema), [
    queue,
    jobs.map((j) => j.id),
    jobs.map((j) => j.retryCount),
  ]);
  return rows.map((r) => ({ id: r.id, written: r.written, waitMs: r.wait_ms }));
}

/**
 * Puts fetched run jobs back in the queue as if never fetched: the same attempt, fetchable at once
 * (the workers are woken), fenced to the attempts given. pg-boss does this for the jobs its local
 * group concurrency cannot start yet (its restore(), which its public API does not expose), so
 * agentcron builds the statement (sql.ts, with its other statements on pg-boss's tables).
 */
export async function requeueRunJobs(db: Queryable, schema: string, jobs: { id: string; retryCount: number }[]): Promise<void> {
  if (jobs.length === 0) return;
  await db.query(requeueRunJobsSql(schema), [QUEUES.run, jobs.map((j) => j.id), jobs.map((j) => `${j.id}:${j.retryCount}`), queueNotifyChannel(schema)]);
}

/**
 * Keeps a run's result on its fetched job while this attempt holds it (fenced to it), and lets
 * the job live `liveSeconds` more before pg-boss expires it (`held` null: only that). True when
 * the job is still this attempt's and was written. See holdRunJobResultSql.
 */
export async function holdRunJobResult(
  db: Queryable,
  schema: string,
  job: { id: string; retryCount: number },
  held: unknown,
  liveSeconds: number,
): Promise<boolean> {
  const { rowCount } = await db.query(holdRunJobResultSql(schema), [
    QUEUES.run,
    job.id,
    job.retryCount,
    held === null ? null : JSON.stringify(held),
    Math.ceil(liveSeconds),
  ]);
  return rowCount === 1;
}

/**
 * A stopping worker's jobs whose results are kept on them go back to the queue as their next
 * attempt, fetchable at once (the workers are woken): the next worker's claim stores the result.
 */
export async function handOnHeldRunJobs(db: Queryable, schema: string, jobs: { id: string; retryCount: number }[]): Promise<void> {
  if (jobs.length === 0) return;
  const sorted = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  await db.query(handOnHeldRunJobsSql(schema), [QUEUES.run, sorted.map((j) => j.id), sorted.map((j) => `${j.id}:${j.retryCount}`), queueNotifyChannel(schema)]);
}

/**
 * A run's retry (lifecycle.finishRunsIn): its fetched job goes back to the queue, fetchable once
 * its backoff has passed (`delaySeconds` from the transaction's time), as a new attempt: the
 * retry count moves on (the next claim's fencing token is new, so nothing of the failed attempt
 * can touch the next) and so does the retry limit (a retried agent failure does not use up the
 * attempts kept for lost workers). Fenced to the attempts given, in the caller's transaction.
 */
export async function snoozeRunJobs(db: Queryable, schema: string, jobs: { id: string; retryCount: number; delaySeconds: number }[]): Promise<void> {
  if (jobs.length === 0) return;
  const sorted = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  await db.query(snoozeRunJobsSql(schema), [
    QUEUES.run,
    sorted.map((j) => j.id),
    sorted.map((j) => j.retryCount),
    sorted.map((j) => j.delaySeconds),
    queueNotifyChannel(schema),
  ]);
}

/**
 * Runs that must wait for room in a limit (lifecycle.claimRuns): their fetched jobs go back to the
 * queue at the same attempt, not fetchable before `until` (when the limit may have room: its rate
 * window opens, its pause ends, or a recheck), so they hold no worker slot meanwhile. Woken
 * earlier by wakeParkedRuns when a slot frees. Fenced to the attempts given.
 */
export async function parkRunJobs(db: Queryable, schema: string, jobs: { id: string; retryCount: number; until: Date }[]): Promise<void> {
  if (jobs.length === 0) return;
  const sorted = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  await db.query(parkRunJobsSql(schema), [
    QUEUES.run,
    sorted.map((j) => j.id),
    sorted.map((j) => j.retryCount),
    sorted.map((j) => j.until),
    queueNotifyChannel(schema),
  ]);
}

/**
 * Slots of limits freed (a limited run ended or went to retry, or a lost worker's slot expired):
 * the oldest runs parked on each limit (runs.waiting = 'limit:<name>'), as many as slots freed,
 * become fetchable now and the workers are woken. A woken run still has to find room when claimed.
 */
export async function wakeParkedRuns(db: Queryable, schema: string, freed: Map<string, number>): Promise<void> {
  if (freed.size === 0) return;
  const names = [...freed.keys()].sort();
  await db.query(wakeParkedRunsSql(schema), [QUEUES.run, names.map((n) => `limit:${n}`), names.map((n) => freed.get(n)!), queueNotifyChannel(schema)]);
}

/** Deletes run jobs still waiting for their start (withdrawn occurrences), in the caller's transaction. */
export async function deleteWaitingRunJobs(db: Queryable, schema: string, runIds: string[]): Promise<void> {
  if (runIds.length === 0) return;
  await db.query(deleteWaitingRunJobsSql(schema), [[...runIds].sort()]);
}

/** Wakes the oldest run of each thread parked for its thread's turn (wakeThreadTurnSql). */
export async function wakeThreadTurn(db: Queryable, schema: string, threadIds: string[]): Promise<void> {
  if (threadIds.length === 0) return;
  await db.query(wakeThreadTurnSql(schema), [QUEUES.run, [...threadIds].sort(), queueNotifyChannel(schema)]);
}
