import type { Job } from 'pg-boss';
import type { AgentRegistry } from '../agents/index.ts';
import { recordStarted } from '../crons/index.ts';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { toError, withLogContext } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss, RunJob } from '../queue/index.ts';
import { QUEUE_DEFAULTS, QUEUES } from '../queue/index.ts';
import { CancelWatcher } from './cancel.ts';
import { RunFinisher, endRuns } from './finish.ts';
import type { RunResult } from './finish.ts';
import { runTimeoutSeconds } from './timeout.ts';

// Executes runs. Delivery is at-least-once, so a job only executes a run it can move from
// pending to running (or, on a retry after a lost worker, from a running state an earlier
// attempt left behind); a finished or deleted run is acknowledged and nothing runs twice.
// A run ends one of three ways: its agent answers (success or error), its timeout aborts it, or it
// is ended elsewhere (cancel, interrupt, rollback, a deleted thread) and this worker, told through
// the database, aborts its agent.

interface ClaimedRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  cron_id: string | null;
  scheduled_for: Date | null;
  kwargs: { input?: unknown; config?: Record<string, unknown>; context?: Record<string, unknown>; webhook?: unknown };
  created_at: Date;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
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
    RETURNING r.run_id, r.thread_id, r.assistant_id, r.cron_id, r.scheduled_for, r.kwargs, r.started_at,
              r.created_at, r.metadata, r.multitask_strategy
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

export interface RunWorkerOptions {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  agents: AgentRegistry;
  /** Most runs executing at once in this process (WORKER_CONCURRENCY). */
  concurrency: number;
  runTimeoutSeconds: number;
  /** RUN_TIMEOUT_MAX_SECONDS (default 3600): the longest timeout an assistant may set. */
  runTimeoutMaxSeconds?: number;
  /** Connection string for the cancel listener; without it cancels are found by the poll alone. */
  listenUrl?: string;
  /** How often running runs are checked for a cancel the listener missed (default 1000 ms). */
  cancelCheckMs?: number;
}

class RunTimeout extends Error {
  override name = 'TimeoutError';
}

/** The run was ended elsewhere (cancel, interrupt, rollback, deleted thread); its agent is stopped. */
class RunCancelled extends Error {
  override name = 'Cancelled';
}

/** What executing a run came to: a result to record, nothing to record, or a retry. */
type Execution = { kind: 'result'; result: RunResult } | { kind: 'cancelled' } | { kind: 'retry' };

export class RunWorker {
  #o: RunWorkerOptions;
  #finisher: RunFinisher;
  /** The runs executing in this process, by id: their agents' abort controllers. */
  #active = new Map<string, AbortController>();
  #cancels: CancelWatcher;

  constructor(options: RunWorkerOptions) {
    this.#o = options;
    this.#finisher = new RunFinisher(options.pool, options.boss, options.logger);
    this.#cancels = new CancelWatcher({
      pool: options.pool,
      logger: options.logger,
      listenUrl: options.listenUrl,
      intervalMs: options.cancelCheckMs ?? 1000,
      held: () => [...this.#active.keys()],
      cancel: (ids) => this.#cancel(ids),
    });
  }

  async start(): Promise<void> {
    const { boss, concurrency } = this.#o;
    await this.#cancels.start();
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
    await this.#cancels.stop();
  }

  async #handle(jobs: Job<RunJob>[]): Promise<{ id: string; status: 'completed' | 'failed' }[]> {
    const { pool } = this.#o;
    const { rows } = await pool.query<ClaimedRun>(CLAIM, [jobs.map((j) => j.data.run_id), jobs.map((j) => j.retryCount + 1)]);
    // Held from the claim on, so a cancel that lands before the agent starts still reaches it.
    const controllers = new Map(rows.map((r) => [r.run_id, this.#hold(r.run_id)]));
    await recordStarted(
      pool,
      rows.filter((r) => r.cron_id && r.scheduled_for).map((r) => ({ cron_id: r.cron_id!, scheduled_for: r.scheduled_for! })),
    ).catch((err) => {
      for (const r of rows) this.#release(r.run_id, controllers.get(r.run_id)!);
      throw err;
    });
    const claimed = new Map(rows.map((r) => [r.run_id, r]));
    return Promise.all(
      jobs.map(async (job) => {
        const run = claimed.get(job.data.run_id);
        // Finished, cancelled or deleted already: acknowledge without running anything.
        if (!run) return { id: job.id, status: 'completed' as const };
        const controller = controllers.get(run.run_id)!;
        metrics.runStarted(run.graph_id);
        const startedAt = performance.now();
        let execution: Execution;
        try {
          execution = await withLogContext({ run_id: run.run_id, cron_id: run.cron_id ?? undefined }, () => this.#execute(run, controller, job.signal));
        } finally {
          this.#release(run.run_id, controller);
        }
        // Shutdown or a lost claim aborted it: leave the run to the job's retry.
        if (execution.kind === 'retry') return { id: job.id, status: 'failed' as const };
        // Whoever cancelled the run has ended it already; there is nothing to record.
        if (execution.kind === 'cancelled') {
          metrics.runFinished(run.graph_id, 'interrupted', (performance.now() - startedAt) / 1000);
          return { id: job.id, status: 'completed' as const };
        }
        await this.#finisher.finish({
          ...execution.result,
          thread_id: run.thread_id,
          ephemeral: run.ephemeral,
          cron_id: run.cron_id,
          scheduled_for: run.scheduled_for,
          started_at: run.started_at,
          details: {
            assistant_id: run.assistant_id,
            created_at: run.created_at,
            metadata: run.metadata,
            multitask_strategy: run.multitask_strategy,
            kwargs: run.kwargs,
            values: run.values,
          },
        });
        metrics.runFinished(run.graph_id, execution.result.status, (performance.now() - startedAt) / 1000);
        return { id: job.id, status: 'completed' as const };
      }),
    );
  }

  #hold(runId: string): AbortController {
    // A second claim of a run this process still executes (its job was retried after a lost
    // claim): the older execution steps aside without recording anything.
    this.#active.get(runId)?.abort(new RunCancelled('a newer attempt of this run took over'));
    const controller = new AbortController();
    this.#active.set(runId, controller);
    return controller;
  }

  #release(runId: string, controller: AbortController): void {
    if (this.#active.get(runId) === controller) this.#active.delete(runId);
  }

  #cancel(runIds: string[]): void {
    for (const id of runIds) this.#active.get(id)?.abort(new RunCancelled('the run was cancelled'));
  }

  /** Runs the agent under its timeout, until it answers or its run is cancelled or its job aborted. */
  async #execute(run: ClaimedRun, controller: AbortController, jobSignal: AbortSignal): Promise<Execution> {
    const { agents, logger } = this.#o;
    const runLogger = logger.child({ run_id: run.run_id, cron_id: run.cron_id ?? undefined });
    const agent = agents.get(run.graph_id);
    const result = (status: RunResult['status'], output: unknown, error: RunResult['error']): Execution => ({
      kind: 'result',
      result: { run_id: run.run_id, status, output, error },
    });
    if (!agent) return result('error', null, { error: 'UnknownGraph', message: `graph "${run.graph_id}" is not registered on this worker` });
    const timeoutSeconds = this.#timeoutOf(run, runLogger);
    const timer = setTimeout(() => controller.abort(new RunTimeout(`run exceeded its timeout of ${timeoutSeconds}s`)), timeoutSeconds * 1000);
    const onJobAbort = () => controller.abort(jobSignal.reason);
    jobSignal.addEventListener('abort', onJobAbort, { once: true });
    // Settles as soon as the signal aborts, even if the agent ignores it.
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(controller.signal.reason);
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    });
    aborted.catch(() => {});
    const started = Date.now();
    try {
      const output = await Promise.race([
        aborted,
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
      ]);
      runLogger.info('run succeeded', { ms: Date.now() - started });
      return result('success', output ?? null, null);
    } catch (err) {
      const reason = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof RunTimeout) {
        runLogger.warn('run timed out', { ms: Date.now() - started });
        return result('timeout', null, { error: 'TimeoutError', message: reason.message });
      }
      if (controller.signal.aborted && reason instanceof RunCancelled) {
        runLogger.info('run cancelled; its agent was aborted', { ms: Date.now() - started, why: reason.message });
        return { kind: 'cancelled' };
      }
      if (jobSignal.aborted) {
        runLogger.warn('run aborted by shutdown or lost claim; it will be retried', { ms: Date.now() - started });
        return { kind: 'retry' };
      }
      const e = toError(err);
      runLogger.warn('run failed', { err: e.message, ms: Date.now() - started });
      return result('error', null, { error: e.name, message: e.message });
    } finally {
      clearTimeout(timer);
      jobSignal.removeEventListener('abort', onJobAbort);
    }
  }

  #timeoutOf(run: ClaimedRun, runLogger: Logger): number {
    const settings = { seconds: this.#o.runTimeoutSeconds, maxSeconds: this.#o.runTimeoutMaxSeconds ?? QUEUE_DEFAULTS.runTimeoutMaxSeconds };
    const seconds = runTimeoutSeconds(run.assistant_config, settings);
    const asked = run.assistant_config?.timeout_seconds;
    if (asked !== undefined && Number(asked) !== seconds) {
      runLogger.warn("the assistant's config.timeout_seconds is invalid or above RUN_TIMEOUT_MAX_SECONDS; using " + `${seconds}s`, { asked });
    }
    return seconds;
  }

  /** Every attempt of these runs' jobs was lost (workers died): end each run as error, with why. */
  async #lost(jobs: Job<RunJob>[]): Promise<void> {
    const ended = await endRuns(
      this.#o.pool,
      this.#o.boss,
      jobs.map((j) => j.data.run_id),
      { status: 'error', error: { error: 'WorkerLost', message: 'the run was started but its worker stopped responding on every attempt' } },
    );
    if (ended.length) this.#o.logger.warn('runs ended after their workers were lost', { runs: ended });
  }
}
