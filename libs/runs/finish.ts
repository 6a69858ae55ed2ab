import type { RunOutcome } from '../crons/index.ts';
import { recordOutcomes } from '../crons/index.ts';
import type { Pool, PoolClient } from '../db/index.ts';
import { withTransaction } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { toError } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { enqueueWebhooks } from '../webhooks/index.ts';
import type { WebhookJob } from '../webhooks/index.ts';
import { CANCEL_NOTIFY_CHUNK, RUN_CANCEL_CHANNEL } from './cancel.ts';

// How a run ends, whoever ends it: the worker with its agent's result, or a cancel, an
// interrupt, a rollback or a dead-lettered job without one. One transaction settles the run, its
// thread, the cron's last_run_* and ledger row, and enqueues its webhook.

export type RunStatus = 'pending' | 'running' | 'success' | 'error' | 'timeout' | 'interrupted';

const FINISH_RUNS = `
  UPDATE runs r
     SET status = v.status, output = v.output, error = v.error, ended_at = now(), updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[]) AS v(run_id, status, output, error)
   WHERE r.run_id = v.run_id AND r.status IN ('pending', 'running')
  RETURNING r.run_id`;

// An ephemeral run is never written, so only its row still existing (and not ended) shows that
// this result is the first: a cancel may have ended it and deleted its thread already. The lock
// makes a racing second finisher wait and then find the row gone. Asked only for runs with a
// webhook (which must not be sent twice): the ledger guards itself, deleting a thread is idempotent.
const LIVE_EPHEMERAL_RUNS = `
  SELECT run_id FROM runs WHERE run_id = ANY($1::uuid[]) AND status IN ('pending', 'running') FOR UPDATE`;

// The thread takes the run's output as its values; it is busy while another run of it is still going.
const SETTLE_THREADS = `
  UPDATE threads t
     SET "values" = CASE WHEN v.status = 'success' THEN v.output ELSE t."values" END,
         status = CASE
           WHEN EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = t.thread_id AND o.status = 'running') THEN 'busy'
           WHEN v.status = 'success' THEN 'idle'
           WHEN v.status = 'interrupted' THEN 'interrupted'
           ELSE 'error' END,
         updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS v(thread_id, status, output)
   WHERE t.thread_id = v.thread_id`;

const DELETE_EPHEMERAL = `DELETE FROM threads WHERE thread_id = ANY($1::uuid[]) AND ephemeral`;

export interface RunResult {
  run_id: string;
  status: Exclude<RunStatus, 'pending' | 'running'>;
  output: unknown;
  error: { error: string; message: string } | null;
}

/** What a webhook reports of a run besides its result (read when the run was claimed or ended). */
export interface RunDetails {
  assistant_id: string;
  created_at: Date;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  /** The thread's values before this run ended. */
  values: unknown;
}

/** A result with what the claim already knew of its run, so finishing needs no extra read. */
export interface FinishedRun extends RunResult {
  thread_id: string;
  ephemeral: boolean;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
  /** Needed only to send the run's webhook (kwargs.webhook). */
  details?: RunDetails;
}

/**
 * Ends runs in batches: results that arrive in the same tick share one transaction, so a
 * batch of quick runs costs a handful of statements, and a slow run never holds back the others.
 */
export class RunFinisher {
  #pool: Pool;
  #boss: PgBoss;
  #logger: Logger;
  #queue: { result: FinishedRun; done: (err?: unknown) => void }[] = [];
  #scheduled = false;

  constructor(pool: Pool, boss: PgBoss, logger: Logger) {
    this.#pool = pool;
    this.#boss = boss;
    this.#logger = logger;
  }

  finish(result: FinishedRun): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ result, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const items = this.#queue.splice(0);
    try {
      await finishRuns(this.#pool, this.#boss, items.map((i) => i.result));
      for (const i of items) i.done();
    } catch (err) {
      this.#logger.error('could not record run results', { err: toError(err).message, runs: items.length });
      for (const i of items) i.done(err);
    }
  }
}

/**
 * Ends runs in one transaction: a run on a kept thread is updated (only if still pending or
 * running) and its thread takes the output as values; a run on an ephemeral thread is not
 * written at all, the thread is deleted with its runs. Cron runs update their ledger row and the
 * cron's last_run_* either way. Runs with a webhook get its delivery enqueued in the same
 * transaction. A result for a run that already ended changes nothing and sends nothing.
 */
export async function finishRuns(pool: Pool, boss: PgBoss, results: FinishedRun[]): Promise<void> {
  if (results.length === 0) return;
  await withTransaction(pool, (client) => finishRunsIn(client, boss, results));
}

/** finishRuns inside the caller's transaction. */
export async function finishRunsIn(client: PoolClient, boss: PgBoss, results: FinishedRun[]): Promise<void> {
  if (results.length === 0) return;
  const kept = results.filter((r) => !r.ephemeral);
  const ephemeral = results.filter((r) => r.ephemeral);
  let ended: FinishedRun[] = [];
  if (kept.length) {
    const { rows } = await client.query<{ run_id: string }>(FINISH_RUNS, [
      kept.map((r) => r.run_id),
      kept.map((r) => r.status),
      kept.map((r) => (r.output === undefined ? null : JSON.stringify(r.output))),
      kept.map((r) => (r.error ? JSON.stringify(r.error) : null)),
    ]);
    const updated = new Set(rows.map((r) => r.run_id));
    const keptEnded = kept.filter((r) => updated.has(r.run_id));
    // One row per thread: the last result wins (runs on one thread are serialised anyway).
    const threads = new Map(keptEnded.map((r) => [r.thread_id, r]));
    if (threads.size) {
      await client.query(SETTLE_THREADS, [
        [...threads.keys()],
        [...threads.values()].map((r) => r.status),
        [...threads.values()].map((r) => (r.status === 'success' ? JSON.stringify(r.output ?? null) : null)),
      ]);
    }
    ended = keptEnded;
  }
  const hooked = ephemeral.filter(hasWebhook);
  if (hooked.length) {
    const { rows } = await client.query<{ run_id: string }>(LIVE_EPHEMERAL_RUNS, [hooked.map((r) => r.run_id)]);
    const live = new Set(rows.map((r) => r.run_id));
    ended = [...ended, ...ephemeral.filter((r) => !hasWebhook(r) || live.has(r.run_id))];
  } else ended = [...ended, ...ephemeral];
  const outcomes: RunOutcome[] = ended
    .filter((r) => r.cron_id && r.scheduled_for)
    .map((r) => ({
      run_id: r.run_id,
      cron_id: r.cron_id!,
      scheduled_for: r.scheduled_for!,
      status: r.status,
      error: r.error ? r.error.message : null,
      started_at: r.started_at,
    }));
  await recordOutcomes(client, outcomes);
  await enqueueWebhooks(client, boss, await webhookJobs(client, ended));
  if (ephemeral.length) await client.query(DELETE_EPHEMERAL, [ephemeral.map((r) => r.thread_id)]);
}

const hasWebhook = (r: FinishedRun): boolean => typeof r.details?.kwargs.webhook === 'string';

/** The webhook deliveries of runs that just ended: the whole Run, since its thread may be gone when it is sent. */
async function webhookJobs(client: PoolClient, ended: FinishedRun[]): Promise<WebhookJob[]> {
  const withHook = ended.filter(hasWebhook);
  if (withHook.length === 0) return [];
  // The time the runs were ended at: FINISH_RUNS wrote now() too, the transaction's start.
  const { rows } = await client.query<{ now: Date }>(`SELECT now() AS now`);
  const endedAt = rows[0].now.toISOString();
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return withHook.map((r) => {
    const d = r.details!;
    return {
      url: d.kwargs.webhook as string,
      run: {
        run_id: r.run_id,
        thread_id: r.thread_id,
        assistant_id: d.assistant_id,
        created_at: d.created_at.toISOString(),
        updated_at: endedAt,
        status: r.status,
        metadata: d.metadata,
        multitask_strategy: d.multitask_strategy,
        kwargs: d.kwargs,
        cron_id: r.cron_id,
        scheduled_for: iso(r.scheduled_for),
        run_started_at: iso(r.started_at),
        run_ended_at: endedAt,
        values: r.status === 'success' ? (r.output ?? null) : (d.values ?? null),
        error: r.error,
      },
    };
  });
}

export type EndOutcome = Pick<RunResult, 'status' | 'error'>;

// What ending a run without its worker's result needs to know of it, webhook details included.
const ENDABLE_RUNS = `
  SELECT r.run_id, r.thread_id, t.ephemeral, r.cron_id, r.scheduled_for, r.started_at,
         r.assistant_id, r.created_at, r.metadata, r.multitask_strategy, r.kwargs, t."values"
    FROM runs r JOIN threads t USING (thread_id)
   WHERE r.run_id = ANY($1::uuid[]) AND r.status IN ('pending', 'running')`;

interface EndableRow extends RunDetails {
  run_id: string;
  thread_id: string;
  ephemeral: boolean;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
}

/**
 * Ends runs that no worker result is at hand for (a cancel, a dead-lettered job) with the same
 * outcome each; runs already ended are left alone. Answers the runs ended.
 */
export async function endRuns(pool: Pool, boss: PgBoss, runIds: string[], outcome: EndOutcome): Promise<string[]> {
  if (runIds.length === 0) return [];
  return withTransaction(pool, (client) => endRunsIn(client, boss, runIds, outcome));
}

/**
 * endRuns inside the caller's transaction. The worker holding any of these runs is told on commit
 * (NOTIFY) and aborts its agent. The caller must not hold locks on the runs' threads taken in
 * another transaction: ending them updates those threads.
 */
export async function endRunsIn(client: PoolClient, boss: PgBoss, runIds: string[], outcome: EndOutcome): Promise<string[]> {
  if (runIds.length === 0) return [];
  const { rows } = await client.query<EndableRow>(ENDABLE_RUNS, [runIds]);
  await finishRunsIn(
    client,
    boss,
    rows.map((r) => ({
      run_id: r.run_id,
      thread_id: r.thread_id,
      ephemeral: r.ephemeral,
      cron_id: r.cron_id,
      scheduled_for: r.scheduled_for,
      started_at: r.started_at,
      ...outcome,
      output: null,
      details: {
        assistant_id: r.assistant_id,
        created_at: r.created_at,
        metadata: r.metadata,
        multitask_strategy: r.multitask_strategy,
        kwargs: r.kwargs,
        values: r.values,
      },
    })),
  );
  const ended = rows.map((r) => r.run_id);
  for (let i = 0; i < ended.length; i += CANCEL_NOTIFY_CHUNK) {
    await client.query(`SELECT pg_notify($1, $2)`, [RUN_CANCEL_CHANNEL, ended.slice(i, i + CANCEL_NOTIFY_CHUNK).join(',')]);
  }
  return ended;
}
