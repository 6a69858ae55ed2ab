import type { Job } from 'pg-boss';
import type { AgentRegistry } from '../agents/index.ts';
import { recordOutcomes, recordStarted } from '../crons/index.ts';
import type { RunOutcome } from '../crons/index.ts';
import type { Pool } from '../db/index.ts';
import { withTransaction } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { toError, withLogContext } from '../log/index.ts';
import type { PgBoss, RunJob } from '../queue/index.ts';
import { QUEUES } from '../queue/index.ts';

// Executes runs. Delivery is at-least-once, so a job only executes a run it can move from
// pending to running (or, on a retry after a lost worker, from a running state an earlier
// attempt left behind); a finished or deleted run is acknowledged and nothing runs twice.

export type RunStatus = 'pending' | 'running' | 'success' | 'error' | 'timeout' | 'interrupted';

interface ClaimedRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  cron_id: string | null;
  scheduled_for: Date | null;
  kwargs: { input?: unknown; config?: Record<string, unknown>; context?: Record<string, unknown> };
  started_at: Date;
  values: Record<string, unknown> | null;
  ephemeral: boolean;
  graph_id: string;
  assistant_config: Record<string, unknown>;
  assistant_context: Record<string, unknown>;
}

const CLAIM = `
  WITH claimed AS (
    UPDATE runs r
       SET status = 'running', started_at = now(), updated_at = now(), attempts = r.attempts + 1
      FROM unnest($1::uuid[], $2::int[]) AS v(run_id, attempt)
     WHERE r.run_id = v.run_id
       AND (r.status = 'pending' OR (r.status = 'running' AND r.attempts < v.attempt))
    RETURNING r.run_id, r.thread_id, r.assistant_id, r.cron_id, r.scheduled_for, r.kwargs, r.started_at
  ), busy AS (
    -- An ephemeral thread is deleted when its run ends: nobody sees it busy, so it is not written.
    UPDATE threads t SET status = 'busy', updated_at = now()
      FROM (SELECT DISTINCT thread_id FROM claimed) c
     WHERE t.thread_id = c.thread_id AND NOT t.ephemeral
  )
  SELECT c.*, t."values", t.ephemeral, a.graph_id, a.config AS assistant_config, a.context AS assistant_context
    FROM claimed c
    JOIN threads t USING (thread_id)
    JOIN assistants a USING (assistant_id)`;

const FINISH_RUNS = `
  UPDATE runs r
     SET status = v.status, output = v.output, error = v.error, ended_at = now(), updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[]) AS v(run_id, status, output, error)
   WHERE r.run_id = v.run_id AND r.status IN ('pending', 'running')
  RETURNING r.run_id`;

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

/** A result with what the claim already knew of its run, so finishing needs no extra read. */
export interface FinishedRun extends RunResult {
  thread_id: string;
  ephemeral: boolean;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
}

/**
 * Ends runs in batches: results that arrive in the same tick share one transaction, so a
 * batch of quick runs costs a handful of statements, and a slow run never holds back the others.
 */
class RunFinisher {
  #pool: Pool;
  #logger: Logger;
  #queue: { result: FinishedRun; done: (err?: unknown) => void }[] = [];
  #scheduled = false;

  constructor(pool: Pool, logger: Logger) {
    this.#pool = pool;
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
      await finishRuns(this.#pool, items.map((i) => i.result));
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
 * cron's last_run_* either way.
 */
export async function finishRuns(pool: Pool, results: FinishedRun[]): Promise<void> {
  if (results.length === 0) return;
  await withTransaction(pool, async (client) => {
    const kept = results.filter((r) => !r.ephemeral);
    let ended = results.filter((r) => r.ephemeral);
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
      ended = [...ended, ...keptEnded];
    }
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
    const ephemeral = results.filter((r) => r.ephemeral).map((r) => r.thread_id);
    if (ephemeral.length) await client.query(DELETE_EPHEMERAL, [ephemeral]);
  });
}

/**
 * Ends runs that no worker result is at hand for (a cancel, a dead-lettered job) with the same
 * outcome each; runs already ended are left alone.
 */
export async function endRuns(pool: Pool, runIds: string[], outcome: Pick<RunResult, 'status' | 'error'>): Promise<string[]> {
  if (runIds.length === 0) return [];
  const { rows } = await pool.query<Omit<FinishedRun, keyof RunResult> & { run_id: string }>(
    `SELECT r.run_id, r.thread_id, t.ephemeral, r.cron_id, r.scheduled_for, r.started_at
       FROM runs r JOIN threads t USING (thread_id)
      WHERE r.run_id = ANY($1::uuid[]) AND r.status IN ('pending', 'running')`,
    [runIds],
  );
  await finishRuns(pool, rows.map((r) => ({ ...r, ...outcome, output: null })));
  return rows.map((r) => r.run_id);
}

export interface RunWorkerOptions {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  agents: AgentRegistry;
  /** Most runs executing at once in this process (WORKER_CONCURRENCY). */
  concurrency: number;
  runTimeoutSeconds: number;
}

class RunTimeout extends Error {
  override name = 'TimeoutError';
}

export class RunWorker {
  #o: RunWorkerOptions;
  #finisher: RunFinisher;

  constructor(options: RunWorkerOptions) {
    this.#o = options;
    this.#finisher = new RunFinisher(options.pool, options.logger);
  }

  async start(): Promise<void> {
    const { boss, concurrency } = this.#o;
    // Batches keep the cost per run low (one claim, one finish transaction per batch); several
    // pollers keep a slow run from holding back the fetching of new ones.
    const batchSize = Math.max(1, Math.min(50, Math.ceil(concurrency / 4)));
    const pollers = Math.max(1, Math.ceil(concurrency / batchSize));
    await boss.work<RunJob>(
      QUEUES.run,
      {
        batchSize,
        localConcurrency: pollers,
        // Runs of one thread (or one buffer_one cron) never overlap, on any worker.
        groupConcurrency: 1,
        pollingIntervalSeconds: 2,
        notifyPollingIntervalSeconds: 10,
        burstWhenBatchFull: true,
        perJobResults: true,
      },
      (jobs) => this.#handle(jobs),
    );
    await boss.work<RunJob>(QUEUES.runDead, { pollingIntervalSeconds: 5 }, async (jobs) => {
      await this.#lost(jobs);
    });
  }

  /** Stops fetching and waits for the runs in progress (the caller bounds the wait). */
  async stop(): Promise<void> {
    await Promise.all([this.#o.boss.offWork(QUEUES.run, { wait: true }), this.#o.boss.offWork(QUEUES.runDead, { wait: true })]);
  }

  async #handle(jobs: Job<RunJob>[]): Promise<{ id: string; status: 'completed' | 'failed' }[]> {
    const { pool } = this.#o;
    const { rows } = await pool.query<ClaimedRun>(CLAIM, [jobs.map((j) => j.data.run_id), jobs.map((j) => j.retryCount + 1)]);
    await recordStarted(
      pool,
      rows.filter((r) => r.cron_id && r.scheduled_for).map((r) => ({ cron_id: r.cron_id!, scheduled_for: r.scheduled_for! })),
    );
    const claimed = new Map(rows.map((r) => [r.run_id, r]));
    return Promise.all(
      jobs.map(async (job) => {
        const run = claimed.get(job.data.run_id);
        // Finished, cancelled or deleted already: acknowledge without running anything.
        if (!run) return { id: job.id, status: 'completed' as const };
        const result = await withLogContext({ run_id: run.run_id, cron_id: run.cron_id ?? undefined }, () => this.#execute(run, job.signal));
        // Shutdown or a lost claim aborted it: leave the run to the job's retry.
        if (result === null) return { id: job.id, status: 'failed' as const };
        await this.#finisher.finish({
          ...result,
          thread_id: run.thread_id,
          ephemeral: run.ephemeral,
          cron_id: run.cron_id,
          scheduled_for: run.scheduled_for,
          started_at: run.started_at,
        });
        return { id: job.id, status: 'completed' as const };
      }),
    );
  }

  /** Runs the agent under the run timeout; null when the job itself was aborted (shutdown, lost claim). */
  async #execute(run: ClaimedRun, jobSignal: AbortSignal): Promise<RunResult | null> {
    const { agents, logger } = this.#o;
    const runLogger = logger.child({ run_id: run.run_id, cron_id: run.cron_id ?? undefined });
    const agent = agents.get(run.graph_id);
    if (!agent) {
      return { run_id: run.run_id, status: 'error', output: null, error: { error: 'UnknownGraph', message: `graph "${run.graph_id}" is not registered on this worker` } };
    }
    const controller = new AbortController();
    const timeoutSeconds = this.#o.runTimeoutSeconds;
    const timer = setTimeout(() => controller.abort(new RunTimeout(`run exceeded its timeout of ${timeoutSeconds}s`)), timeoutSeconds * 1000);
    const onJobAbort = () => controller.abort(jobSignal.reason);
    jobSignal.addEventListener('abort', onJobAbort, { once: true });
    const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }));
    aborted.catch(() => {});
    const started = Date.now();
    try {
      const output = await Promise.race([
        agent(run.kwargs.input ?? null, {
          run_id: run.run_id,
          thread_id: run.thread_id,
          assistant_id: run.assistant_id,
          graph_id: run.graph_id,
          cron_id: run.cron_id,
          scheduled_for: run.scheduled_for,
          values: run.values,
          config: { ...run.assistant_config, ...(run.kwargs.config ?? {}) },
          context: { ...run.assistant_context, ...(run.kwargs.context ?? {}) },
          signal: controller.signal,
          logger: runLogger,
          idempotency_key: run.cron_id && run.scheduled_for ? `${run.cron_id}:${run.scheduled_for.toISOString()}` : run.run_id,
        }),
        aborted,
      ]);
      runLogger.info('run succeeded', { ms: Date.now() - started });
      return { run_id: run.run_id, status: 'success', output: output ?? null, error: null };
    } catch (err) {
      if (controller.signal.reason instanceof RunTimeout) {
        runLogger.warn('run timed out', { ms: Date.now() - started });
        return { run_id: run.run_id, status: 'timeout', output: null, error: { error: 'TimeoutError', message: controller.signal.reason.message } };
      }
      if (jobSignal.aborted) {
        runLogger.warn('run aborted by shutdown or lost claim; it will be retried', { ms: Date.now() - started });
        return null;
      }
      const e = toError(err);
      runLogger.warn('run failed', { err: e.message, ms: Date.now() - started });
      return { run_id: run.run_id, status: 'error', output: null, error: { error: e.name, message: e.message } };
    } finally {
      clearTimeout(timer);
      jobSignal.removeEventListener('abort', onJobAbort);
    }
  }

  /** Every attempt of these runs' jobs was lost (workers died): end each run as error, with why. */
  async #lost(jobs: Job<RunJob>[]): Promise<void> {
    const ended = await endRuns(
      this.#o.pool,
      jobs.map((j) => j.data.run_id),
      { status: 'error', error: { error: 'WorkerLost', message: 'the run was started but its worker stopped responding on every attempt' } },
    );
    if (ended.length) this.#o.logger.warn('runs ended after their workers were lost', { runs: ended });
  }
}
