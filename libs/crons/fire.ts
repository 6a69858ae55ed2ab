import type { Pool, PoolClient } from '../db/index.ts';
import { prepared } from '../db/index.ts';
import { occurrenceRunId, occurrenceThreadId } from '../ids/index.ts';
import type { Logger } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { cancelRuns, insertRuns } from '../runs/index.ts';
import type { NewRun } from '../runs/index.ts';
import { plannedStart } from '../firing/index.ts';
import type { SkipReason } from '../firing/index.ts';
import type { CronPayload, OccurrenceTrigger, OnRunCompleted, OverlapPolicy } from './types.ts';

/** What firing needs to know of a cron. */
export interface FiringCron {
  cron_id: string;
  assistant_id: string;
  graph_id: string;
  thread_id: string | null;
  user_id: string;
  on_run_completed: OnRunCompleted | null;
  overlap_policy: OverlapPolicy;
  payload: CronPayload;
  /** A scheduled occurrence starts at scheduled_for plus its offset in [0, jitter_seconds) (libs/firing/jitter.ts). */
  jitter_seconds: number;
}

/** What firing needs of a cron row (the API's CronRow or the scheduler's claim), with its graph. */
export function firingCron(cron: Omit<FiringCron, 'graph_id' | 'jitter_seconds'> & { jitter_seconds?: number | null }, graphId: string): FiringCron {
  return {
    cron_id: cron.cron_id,
    assistant_id: cron.assistant_id,
    graph_id: graphId,
    thread_id: cron.thread_id,
    user_id: cron.user_id,
    on_run_completed: cron.on_run_completed,
    overlap_policy: cron.overlap_policy,
    payload: cron.payload,
    jitter_seconds: cron.jitter_seconds ?? 0,
  };
}

export interface Firing {
  cron: FiringCron;
  scheduled_for: Date;
  skipped_count: number;
  trigger: OccurrenceTrigger;
}

export interface Skip {
  cron_id: string;
  scheduled_for: Date;
  reason: SkipReason;
  /** What the occurrence was for (default schedule; create when a cron's first run was skipped). */
  trigger?: OccurrenceTrigger;
}

/**
 * The run of one occurrence: a fresh thread for a stateless cron, the cron's thread otherwise. Its
 * id is the occurrence's (occurrenceRunId); a retry of the occurrence passes the id of its attempt.
 */
export function runOf(f: Firing, runId: string = occurrenceRunId(f.cron.cron_id, f.scheduled_for)): NewRun {
  const { cron, scheduled_for } = f;
  const stateless = cron.thread_id === null;
  const ephemeral = stateless && (cron.on_run_completed ?? 'delete') === 'delete';
  const threadId = stateless ? occurrenceThreadId(cron.cron_id, scheduled_for) : cron.thread_id!;
  return {
    run_id: runId,
    thread_id: threadId,
    assistant_id: cron.assistant_id,
    user_id: cron.user_id,
    cron_id: cron.cron_id,
    scheduled_for,
    kwargs: cron.payload,
    multitask_strategy: cron.payload.multitask_strategy ?? 'enqueue',
    metadata: {},
    new_thread: stateless
      ? {
          metadata: { cron_id: cron.cron_id, assistant_id: cron.assistant_id, graph_id: cron.graph_id, scheduled_for: scheduled_for.toISOString() },
          ephemeral,
        }
      : undefined,
    // Thread runs queue behind each other; buffer_one crons behind their own previous run. A run on
    // an ephemeral thread has no one to queue behind (its thread is its occurrence's alone, and the
    // claim never waits on it): no group, which spares pg-boss's fetch its per-job group probe.
    serialize_key: stateless ? (cron.overlap_policy === 'buffer_one' ? `cron:${cron.cron_id}` : ephemeral ? null : threadId) : threadId,
  };
}

// The ledger row is the guard of an occurrence: written first, ON CONFLICT DO NOTHING, and only
// the occurrences whose row this statement inserted get a run and a job. A row already there
// (fired before, by anyone, even if its ephemeral thread and run are long gone) fires nothing.
const INSERT_LEDGER = `
  INSERT INTO cron_occurrences (cron_id, scheduled_for, run_id, thread_id, trigger, status, reason, skipped_count, enqueued_at, planned_for)
  SELECT o.cron_id, o.scheduled_for, o.run_id, o.thread_id, o.trigger, o.status, o.reason, o.skipped_count,
         CASE WHEN o.status = 'enqueued' THEN clock_timestamp() END, o.planned_for
    FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[], $9::timestamptz[])
         AS o(cron_id, scheduled_for, run_id, thread_id, trigger, status, reason, skipped_count, planned_for)
   ORDER BY o.cron_id, o.scheduled_for
  ON CONFLICT (cron_id, scheduled_for) DO NOTHING
  RETURNING cron_id, scheduled_for`;

const occurrenceKey = (cronId: string, at: Date): string => `${cronId}@${at.getTime()}`;

/**
 * When a firing's run is planned to start, if later than its scheduled_for: a scheduled occurrence
 * of a cron with jitter_seconds. The cron's first run (create), a trigger, a backfill and a retry
 * start at once (someone asked for them now). null: at scheduled_for.
 */
export function jitteredStart(f: Firing): Date | null {
  if (f.trigger !== 'schedule' || f.cron.jitter_seconds <= 0) return null;
  const planned = plannedStart(f.cron.cron_id, f.scheduled_for, f.cron.jitter_seconds);
  return planned.getTime() > f.scheduled_for.getTime() ? planned : null;
}

/**
 * Fires occurrences inside the caller's transaction, which must hold the crons' row locks (a
 * scheduler pass, or the API's create and trigger): each new occurrence gets its ledger row, then
 * its run (and thread) and its pg-boss job; each skipped occurrence gets a ledger row with its
 * reason. An occurrence that already has a ledger row gets nothing. A scheduled occurrence's job
 * starts after its instant (fired ahead, CRON_LOOKAHEAD_MS, it waits for it), a jittered one's
 * after its planned start (the ledger row's planned_for). Answers the runs written.
 */
export async function fireOccurrences(client: PoolClient, boss: PgBoss, firings: Firing[], skips: Skip[] = []): Promise<NewRun[]> {
  if (firings.length === 0 && skips.length === 0) return [];
  const planned = firings.map(jitteredStart);
  const runs = firings.map((f, i) => {
    const run = runOf(f);
    // A scheduled occurrence never starts before its instant (its planned start with jitter): the
    // scheduler may fire it ahead (CRON_LOOKAHEAD_MS). At or after it, the job is fetchable at once.
    if (f.trigger === 'schedule') run.start_after = planned[i] ?? f.scheduled_for;
    return run;
  });
  const { rows } = await client.query<{ cron_id: string; scheduled_for: Date }>(
    prepared(client, INSERT_LEDGER, [
      [...firings.map((f) => f.cron.cron_id), ...skips.map((s) => s.cron_id)],
      [...firings.map((f) => f.scheduled_for), ...skips.map((s) => s.scheduled_for)],
      [...runs.map((r) => r.run_id), ...skips.map(() => null)],
      [...runs.map((r) => r.thread_id), ...skips.map(() => null)],
      [...firings.map((f) => f.trigger), ...skips.map((s) => s.trigger ?? 'schedule')],
      [...firings.map(() => 'enqueued'), ...skips.map(() => 'skipped')],
      [...firings.map(() => null), ...skips.map((s) => s.reason)],
      [...firings.map((f) => f.skipped_count), ...skips.map(() => 0)],
      [...planned, ...skips.map(() => null)],
    ]),
  );
  const fresh = new Set(rows.map((r) => occurrenceKey(r.cron_id, r.scheduled_for)));
  const toWrite = runs.filter((r) => fresh.has(occurrenceKey(r.cron_id!, r.scheduled_for!)));
  const written = await insertRuns(client, boss, toWrite);
  return toWrite.filter((r) => written.has(r.run_id));
}

/** Active runs a thread cron's new occurrence stops, by multitask_strategy. */
export interface Superseded {
  interrupt: string[];
  rollback: string[];
}

// Runs still going on the threads that just got a new run, other than the runs just written.
const ACTIVE_ON_THREADS = `
  SELECT r.run_id, v.strategy
    FROM unnest($1::uuid[], $2::text[]) AS v(thread_id, strategy)
    JOIN runs r ON r.thread_id = v.thread_id
   WHERE r.status IN ('pending', 'running') AND NOT (r.run_id = ANY($3::uuid[]))`;

/**
 * multitask_strategy interrupt and rollback on thread crons: the runs already going on the threads
 * of the runs just fired, which the caller cancels once the firing has committed (cancelling
 * updates the runs' threads, which must not happen under the locks a scheduler pass holds on its
 * crons: a worker finishing one of those runs would wait on the cron while holding the run).
 */
export async function runsToSupersede(client: PoolClient, fired: NewRun[]): Promise<Superseded> {
  const byThread = new Map<string, string>();
  for (const r of fired) {
    if (!r.new_thread && (r.multitask_strategy === 'interrupt' || r.multitask_strategy === 'rollback')) byThread.set(r.thread_id, r.multitask_strategy);
  }
  if (byThread.size === 0) return { interrupt: [], rollback: [] };
  const { rows } = await client.query<{ run_id: string; strategy: 'interrupt' | 'rollback' }>(ACTIVE_ON_THREADS, [
    [...byThread.keys()],
    [...byThread.values()],
    fired.map((r) => r.run_id),
  ]);
  return {
    interrupt: rows.filter((r) => r.strategy === 'interrupt').map((r) => r.run_id),
    rollback: rows.filter((r) => r.strategy === 'rollback').map((r) => r.run_id),
  };
}

/**
 * Cancels the runs that new occurrences superseded, once the firing has committed, through the
 * API's cancel path (their workers abort the agents; rollback deletes them). The new runs queue
 * behind them on their thread, so they start once the old ones have stopped. Should cancelling
 * fail, the new runs simply wait their turn (as with enqueue): the error is logged, never thrown.
 * Answers the runs ended.
 */
export async function cancelSuperseded(pool: Pool, boss: PgBoss, s: Superseded, logger: Logger): Promise<string[]> {
  const ended: string[] = [];
  for (const action of ['interrupt', 'rollback'] as const) {
    if (s[action].length === 0) continue;
    try {
      const done = await cancelRuns(pool, boss, s[action], action, `by a newer occurrence of a cron on its thread (multitask_strategy ${action})`);
      if (done.length) logger.info(`runs superseded by new cron occurrences (${action})`, { runs: done });
      ended.push(...done);
    } catch (err) {
      logger.error(`could not ${action} the runs superseded by new cron occurrences`, { err: (err as Error).message, runs: s[action] });
    }
  }
  return ended;
}

/** What the overlap rule needs to know of a cron. */
export type OverlapCron = Pick<FiringCron, 'cron_id' | 'thread_id' | 'overlap_policy' | 'payload'>;

/** Runs not ended, by cron (stateless crons whose overlap_policy limits them) and by thread (thread crons with reject). */
export interface ActiveRuns {
  byCron: Map<string, number>;
  byThread: Map<string, number>;
}

// Runs still pending or running, for the crons whose overlap rule needs to know.
const ACTIVE_RUNS = `
  SELECT cron_id, NULL::uuid AS thread_id, count(*)::int AS active
    FROM runs WHERE cron_id = ANY($1::uuid[]) AND status IN ('pending', 'running') GROUP BY cron_id
  UNION ALL
  SELECT NULL, thread_id, count(*)::int
    FROM runs WHERE thread_id = ANY($2::uuid[]) AND status IN ('pending', 'running') GROUP BY thread_id`;

/** The active runs overlapAllowance needs for these crons (one query; none when no cron's rule looks). */
export async function activeRuns(client: PoolClient, crons: OverlapCron[]): Promise<ActiveRuns> {
  const cronIds = crons.filter((r) => r.thread_id === null && r.overlap_policy !== 'allow').map((r) => r.cron_id);
  const threadIds = crons.filter((r) => r.thread_id !== null && r.payload.multitask_strategy === 'reject').map((r) => r.thread_id!);
  const result: ActiveRuns = { byCron: new Map(), byThread: new Map() };
  if (cronIds.length === 0 && threadIds.length === 0) return result;
  const { rows: counts } = await client.query<{ cron_id: string | null; thread_id: string | null; active: number }>(ACTIVE_RUNS, [cronIds, threadIds]);
  for (const c of counts) {
    if (c.cron_id) result.byCron.set(c.cron_id, c.active);
    if (c.thread_id) result.byThread.set(c.thread_id, c.active);
  }
  return result;
}

/**
 * How many occurrences of this cron may fire now (docs/scheduling.md, point 8), for the scheduler and
 * for the API's first run and trigger alike. Stateless: allow (no limit), skip (only when
 * nothing is running), buffer_one (one running plus one waiting). Thread crons: reject skips
 * while the thread is busy; enqueue, interrupt and rollback always fire (the last two then cancel
 * the thread's active runs: see runsToSupersede).
 */
export function overlapAllowance(cron: OverlapCron, active: ActiveRuns): number {
  if (cron.thread_id !== null) {
    if (cron.payload.multitask_strategy !== 'reject') return Number.MAX_SAFE_INTEGER;
    return (active.byThread.get(cron.thread_id) ?? 0) > 0 ? 0 : 1;
  }
  const running = active.byCron.get(cron.cron_id) ?? 0;
  switch (cron.overlap_policy) {
    case 'allow':
      return Number.MAX_SAFE_INTEGER;
    case 'skip':
      return running > 0 ? 0 : 1;
    case 'buffer_one':
      return Math.max(0, 2 - running);
  }
}
