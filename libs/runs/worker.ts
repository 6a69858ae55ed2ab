import type { Job } from 'pg-boss';
import type { AgentRegistry } from '../agents/index.ts';
import { recordOutcomes, recordStarted } from '../crons/index.ts';
import type { RunOutcome } from '../crons/index.ts';
import type { Pool, PoolClient } from '../db/index.ts';
import { withTransaction } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { toError, withLogContext } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss, RunJob } from '../queue/index.ts';
import { QUEUE_DEFAULTS, QUEUES } from '../queue/index.ts';
import { enqueueWebhooks } from '../webhooks/index.ts';
import type { WebhookJob } from '../webhooks/index.ts';
import { CANCEL_NOTIFY_CHUNK, CancelWatcher, RUN_CANCEL_CHANNEL } from './cancel.ts';

// Executes runs. Delivery is at-least-once, so a job only executes a run it can move from
// pending to running (or, on a retry after a lost worker, from a running state an earlier
// attempt left behind); a finished or deleted run is acknowledged and nothing runs twice.
// A run ends one of three ways: its agent answers (success or error), its timeout aborts it, or it
// is ended elsewhere (cancel, interrupt, rollback, a deleted thread) and this worker, told through
// the database, aborts its agent.

export type RunStatus = 'pending' | 'running' | 'success' | 'error' | 'timeout' | 'interrupted';

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
class RunFinisher {
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

interface EndableRow {
  run_id: string;
  thread_id: string;
  ephemeral: boolean;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
  assistant_id: string;
  created_at: Date;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  values: unknown;
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

export interface RunTimeoutSettings {
  /** RUN_TIMEOUT_SECONDS: a run's timeout unless its assistant sets one. */
  seconds: number;
  /** RUN_TIMEOUT_MAX_SECONDS: the most an assistant may set (never below `seconds`). */
  maxSeconds: number;
}

/**
 * The rule for an assistant's `config.timeout_seconds`: a positive finite number, or a numeric
 * string (fractions allowed), read as seconds; null for anything else. The worker falls back to
 * RUN_TIMEOUT_SECONDS on null; the API refuses such a value (422) when an assistant is written.
 */
export function parseTimeoutSeconds(raw: unknown): number | null {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** The longest timeout an assistant may set: RUN_TIMEOUT_MAX_SECONDS, never below RUN_TIMEOUT_SECONDS. */
export const maxTimeoutSeconds = (s: RunTimeoutSettings): number => Math.max(s.seconds, s.maxSeconds);

/**
 * A run's timeout in seconds: its assistant's `config.timeout_seconds` (see parseTimeoutSeconds)
 * capped at the maximum, else RUN_TIMEOUT_SECONDS. Only the assistant decides it: a run's own
 * config cannot lengthen its leash.
 */
export function runTimeoutSeconds(assistantConfig: Record<string, unknown> | null | undefined, s: RunTimeoutSettings): number {
  const n = parseTimeoutSeconds(assistantConfig?.timeout_seconds);
  return n === null ? s.seconds : Math.min(n, maxTimeoutSeconds(s));
}

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
