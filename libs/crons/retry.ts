import type { PoolClient } from '../db/index.ts';
import { uuidv5 } from '../ids/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { enqueueRuns } from '../queue/index.ts';
import { clearEndedOccurrenceRun, reopenOccurrence } from '../runs/index.ts';
import type { NewRun } from '../runs/index.ts';
import { activeRuns, firingCron, overlapAllowance, runOf, runsToSupersede } from './fire.ts';
import type { Superseded } from './fire.ts';
import type { CronWithGraph } from './repository.ts';
import type { OccurrenceTrigger } from './types.ts';

// Retrying an occurrence that ended error, timeout or interrupted
// (POST /runs/crons/{id}/occurrences/{scheduled_for}/retry): the same occurrence runs again as a
// new attempt. Its run carries the same cron_id and scheduled_for, so the agent gets the same
// idempotency_key (`${cron_id}:${scheduled_for}`, built by the worker). Runs stay one per
// occurrence (UNIQUE (cron_id, scheduled_for)): the ended run of the attempt before, if it still
// exists (a kept thread's), is deleted, and the new run's id is derived from (cron_id,
// scheduled_for, retry n), so its pg-boss job (job id = run id) is new too. The ledger row goes
// back to enqueued with retries + 1 and retried_at; its enqueued_at (the first enqueue: fire lag)
// and trigger stay. next_run_date and fired_through are not touched.
//
// Lock order (libs/runs/lifecycle.ts): the caller holds the cron (1); then the run's thread is
// written (2: a stateless cron's occurrence thread, made again if it was deleted), the old run
// locked and deleted (lifecycle's clearEndedOccurrenceRun) and the new one inserted (3), the
// ledger row locked and reopened (lifecycle's reopenOccurrence, 4), and the job inserted last
// (5). While the cron's lock is held no finish, retry or scheduler pass of this cron can change
// the ledger row (a finish locks the cron first).

/** The statuses an occurrence can be retried from. */
export const RETRYABLE_STATUSES = ['error', 'timeout', 'interrupted'] as const;

// Namespace of retry attempts' run ids (an attempt n >= 1 of an occurrence).
const RETRY_NAMESPACE = '5d0b6f3e-2c4a-5e8b-9f1d-7265747279aa';

/** The run id of retry `n` of an occurrence: deterministic, so a repeated retry n collides instead of duplicating. */
export function retryRunId(cronId: string, scheduledFor: Date, n: number): string {
  return uuidv5(`${cronId}@${scheduledFor.toISOString()}#retry${n}`, RETRY_NAMESPACE);
}

export type RetryOutcome =
  | { kind: 'not_found' }
  | { kind: 'not_retryable'; status: string }
  | { kind: 'overlap' }
  | { kind: 'retried'; run: NewRun; retries: number; superseded: Superseded };

const OCCURRENCE = `SELECT status, retries, trigger FROM cron_occurrences WHERE cron_id = $1 AND scheduled_for = $2`;

const INSERT_THREAD = `
  INSERT INTO threads (thread_id, user_id, metadata, ephemeral) VALUES ($1, $2, $3, $4)
  ON CONFLICT (thread_id) DO NOTHING`;

const INSERT_RUN = `
  INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, kwargs, multitask_strategy, metadata)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;

/**
 * Retries the occurrence of `cron` at `scheduledFor` in the caller's transaction, which holds the
 * cron's row lock. Answers the new run, or why there is none: no such occurrence, one that did
 * not end error/timeout/interrupted, or the cron's overlap rule holding the run back now (as for
 * a trigger). On anything but `retried` the caller rolls the transaction back (a thread may have
 * been written already).
 */
export async function retryOccurrence(client: PoolClient, boss: PgBoss, cron: CronWithGraph, scheduledFor: Date): Promise<RetryOutcome> {
  const { rows } = await client.query<{ status: string; retries: number; trigger: OccurrenceTrigger }>(OCCURRENCE, [cron.cron_id, scheduledFor]);
  const occurrence = rows[0];
  if (!occurrence) return { kind: 'not_found' };
  if (!(RETRYABLE_STATUSES as readonly string[]).includes(occurrence.status)) return { kind: 'not_retryable', status: occurrence.status };
  const firing = firingCron(cron, cron.graph_id);
  if (overlapAllowance(firing, await activeRuns(client, [firing])) < 1) return { kind: 'overlap' };

  const retries = occurrence.retries + 1;
  const run = runOf(
    { cron: firing, scheduled_for: scheduledFor, skipped_count: 0, trigger: occurrence.trigger },
    retryRunId(cron.cron_id, scheduledFor, retries),
  );
  // 2. The thread: a stateless cron's occurrence thread (kept, or made again), or the cron's own.
  if (run.new_thread) {
    await client.query(INSERT_THREAD, [run.thread_id, run.user_id, JSON.stringify(run.new_thread.metadata), run.new_thread.ephemeral]);
  }
  // 3. The run of the attempt before (if its thread kept it) gives way to the new attempt's.
  const going = await clearEndedOccurrenceRun(client, cron.cron_id, scheduledFor);
  if (going) return { kind: 'not_retryable', status: going };
  await client.query(INSERT_RUN, [
    run.run_id,
    run.thread_id,
    run.assistant_id,
    run.user_id,
    run.cron_id,
    run.scheduled_for,
    JSON.stringify(run.kwargs),
    run.multitask_strategy,
    JSON.stringify(run.metadata),
  ]);
  // 4. The ledger row: enqueued again, one retry more.
  const retriesNow = await reopenOccurrence(
    client,
    { cron_id: cron.cron_id, scheduled_for: scheduledFor, run_id: run.run_id, thread_id: run.thread_id },
    RETRYABLE_STATUSES,
  );
  // Under the cron's lock the row cannot have moved; should it have, the caller rolls back.
  if (retriesNow === null) throw new Error(`the ledger row of ${cron.cron_id} at ${scheduledFor.toISOString()} changed under the cron's lock`);
  // 5. Its job (job id = run id).
  await enqueueRuns(boss, [{ run_id: run.run_id, group: run.serialize_key }], client);
  return { kind: 'retried', run, retries: retriesNow, superseded: await runsToSupersede(client, [run]) };
}
