import type { Job } from 'pg-boss';
import type { AgentRegistry } from '../agents/index.ts';
import type { Pool } from '../db/index.ts';
import { Listener, backoffDelay, describeDatabaseError } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { activity, toError, withLogContext } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss, RunJob } from '../queue/index.ts';
import { QUEUE_DEFAULTS, QUEUES, msUntilDeferred, queueNotifyChannel, requeueRunJobs } from '../queue/index.ts';
import { Alarm } from '../timing/index.ts';
import { CancelWatcher } from './cancel.ts';
import { ResultRecorder, heldResultOf } from './recorder.ts';
import type { HeldResult } from './recorder.ts';
import { RUN_CANCEL_CHANNEL, claimRunsLimited, endRuns, handBackRuns, pendingOf } from './lifecycle.ts';
import type { Claim, ClaimLimits, ClaimedRun, FinishedRun, JobAttempt, RetryRequest, RunResult } from './lifecycle.ts';
import { classifyFailure, resolveRetryPolicy, retryDelaySeconds } from './retry.ts';
import type { FailureClass } from './retry.ts';
import { assistantLimitName } from '../agents/index.ts';
import type { LimitSpec } from '../agents/index.ts';
import { runTimeoutSeconds } from './timeout.ts';

// Executes runs, WORKER_CONCURRENCY at a time whatever their lengths. Like graphile-worker's
// LocalQueue it fetches jobs itself (as many as it has free slots, so a slow run never holds a
// slot another could use), claims their runs in one statement, and acknowledges each run on its
// own: a result is stored and its job completed in one transaction (lifecycle.finishRunsIn),
// retried until stored, never a reason to execute the agent again. A slot is free again once
// its agent has answered: storing the result goes on beside the next fetch and claim (the run
// stays held, its job's heartbeat refreshed, until stored), so the database round trips of
// fetching, claiming and finishing overlap instead of taking turns. At most twice
// WORKER_CONCURRENCY runs are held at once: fetching waits while results pile up.
// Delivery is at-least-once, so a job only executes a run it can claim (pending, or left running
// by a lost earlier attempt); a finished or deleted run is acknowledged and nothing runs twice.
// A run ends one of four ways: its agent answers (success or error), its timeout aborts it, it
// is ended elsewhere (cancel, interrupt, rollback, deleted thread: told through the database), or
// the worker stops past its grace period and hands it back to the queue.

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
  /** pg-boss's schema (its NOTIFY channel wakes this worker when runs are enqueued). */
  queueSchema?: string;
  /** Connection string for the LISTEN connection (new runs, cancels); without it, polling alone. */
  listenUrl?: string;
  /** WORKER_HEARTBEAT_SECONDS: held jobs are refreshed every half of it. */
  heartbeatSeconds?: number;
  /**
   * Longest sleep when there is nothing to fetch. New runs wake the worker at once through
   * NOTIFY, and so do deferred ones (a retry's backoff, a park, after_seconds: it then sleeps until
   * the earliest falls due); default 30 s with listenUrl (a backstop), else 2 s.
   */
  pollIntervalMs?: number;
  /** Notifications on pg-boss's channel for other queues (the process's other workers: webhooks, maintenance). */
  onQueueNotification?(payload: string): void;
  /** How often running runs are checked for a cancel the listener missed (default 1000 ms). */
  cancelCheckMs?: number;
  /** How often the dead letter queue is polled (QUEUE_SUPERVISE_INTERVAL_SECONDS: jobs reach it at a supervise pass). */
  deadLetterPollSeconds?: number;
}

class RunTimeout extends Error {
  override name = 'TimeoutError';
}

/** The run was ended elsewhere (cancel, interrupt, rollback, deleted thread) or taken over; its agent is stopped. */
class RunCancelled extends Error {
  override name = 'Cancelled';
}

/** The worker is stopping and its grace period is over: the run goes back to the queue. */
class ShuttingDown extends Error {
  override name = 'ShuttingDown';
}

/** What executing a run came to: a result to record (with what its failure says of a retry), nothing to record, or a hand-back. */
type Execution = { kind: 'result'; result: RunResult; failure?: FailureClass } | { kind: 'cancelled' } | { kind: 'handback' };

interface InFlight {
  run: ClaimedRun;
  job: JobAttempt;
  controller: AbortController;
  done: Promise<void>;
  /** An earlier attempt's result kept on the job (schema error, recorder.ts): stored, the agent not run. */
  held?: HeldResult;
}

/** At most this many jobs per fetch: one claim statement stays small. */
const MAX_FETCH = 100;
/** How long this worker leaves a group alone after one of its runs had to wait for another of the group. */
const GROUP_COOL_DOWN_MS = 250;
/** Of the grace period, kept for handing back what did not finish and closing connections. */
const HANDBACK_MARGIN_MS = 2000;
/** The idle fetch loop's longest sleep while LISTEN is in place: every wake-up it needs is announced. */
export const LISTENING_POLL_MS = 30_000;
/** pg-boss's payload announcing deferred run jobs (libs/queue deferredPayloadSql). */
const RUNS_DEFERRED = `${QUEUES.run}@deferred`;
const RUNS_DEAD = [QUEUES.runDead, `${QUEUES.runDead}@deferred`];

export class RunWorker {
  #o: RunWorkerOptions;
  #recorder: ResultRecorder;
  #inFlight = new Map<string, InFlight>();
  #cancels: CancelWatcher;
  #listener: Listener | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #alarm = new Alarm();
  #heartbeat: NodeJS.Timeout | undefined;
  #deadWork: string | undefined;
  /**
   * Groups (a thread, a buffer_one cron) one of whose fetched runs had to wait for another run of
   * the group to end: its job went back to the queue, and this worker fetches nothing of the group
   * for a moment (pg-boss's ignoreGroups), so it does not spin on it.
   */
  #coolingGroups = new Map<string, number>();
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeTimerAt = 0;
  /** Deferred run jobs may have changed (announced, or not looked at yet): read the earliest when next idle. */
  #recheckDeferred = true;
  /** When the earliest deferred run job falls due (this clock), as last read; null: none. */
  #deferredAt: number | null = null;
  /** Runs whose agent is executing (the slots in use). */
  #executing = 0;
  /** Runs whose agent has answered and whose result (or hand-back) is being stored. */
  #storing = 0;

  get #schema(): string {
    return this.#o.queueSchema ?? 'pgboss';
  }

  /** Deployment-wide limits (agentcron.json's, an assistant's config.max_concurrency) as claims apply them. */
  #limits: ClaimLimits;

  constructor(options: RunWorkerOptions) {
    this.#o = options;
    this.#limits = {
      heartbeatSeconds: options.heartbeatSeconds ?? 30,
      limitsOf: (graphId, assistantId, assistantConfig) => {
        const flow = options.agents.flow;
        const named = (flow.graphs.get(graphId)?.limits ?? []).flatMap((n) => flow.limits.get(n) ?? []);
        const own = assistantConfig.max_concurrency;
        if (typeof own === 'number' && Number.isInteger(own) && own >= 1) {
          return [...named, { name: assistantLimitName(assistantId), max_concurrency: own, rate: null } satisfies LimitSpec];
        }
        return named;
      },
    };
    this.#recorder = new ResultRecorder({ pool: options.pool, boss: options.boss, logger: options.logger });
    this.#cancels = new CancelWatcher({
      pool: options.pool,
      logger: options.logger,
      intervalMs: options.cancelCheckMs ?? 1000,
      held: () => [...this.#inFlight.values()].map((f) => ({ run_id: f.run.run_id, attempt: f.run.attempts })),
      cancel: (ids, why) => this.#cancel(ids, why),
    });
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const { boss, listenUrl, logger } = this.#o;
    if (listenUrl) {
      const runChannel = queueNotifyChannel(this.#schema);
      this.#listener = new Listener({
        connectionString: listenUrl,
        channels: [runChannel, RUN_CANCEL_CHANNEL],
        applicationName: 'agentcron-worker-listen',
        logger,
        onNotification: (channel, payload) => {
          if (channel === RUN_CANCEL_CHANNEL) this.#cancels.notified(payload);
          else if (payload === QUEUES.run) this.#alarm.wake();
          else if (payload === RUNS_DEFERRED) {
            this.#recheckDeferred = true;
            this.#alarm.wake();
          } else if (payload && RUNS_DEAD.includes(payload)) {
            if (this.#deadWork) this.#o.boss.notifyWorker(this.#deadWork);
          } else if (payload) this.#o.onQueueNotification?.(payload);
        },
        // Notifications sent while the connection was down are gone: look now.
        onReconnect: () => {
          this.#recheckDeferred = true;
          this.#alarm.wake();
          this.#cancels.check();
        },
      });
      // Not awaited: a database that is down must not hold up the start (polling covers it).
      void this.#listener.start();
    }
    this.#cancels.start();
    const heartbeatMs = ((this.#o.heartbeatSeconds ?? 30) * 1000) / 2;
    this.#heartbeat = setInterval(() => void this.#touch(), heartbeatMs);
    this.#heartbeat.unref();
    this.#loop = this.#run();
    this.#deadWork = await boss.work<RunJob>(QUEUES.runDead, { pollingIntervalSeconds: this.#o.deadLetterPollSeconds ?? 5 }, async (jobs) => {
      await this.#lost(jobs);
    });
  }

  /**
   * Stops fetching, lets the runs in progress finish within graceMs (less a margin), then aborts
   * the rest and hands them back to the queue so another worker takes them at once.
   */
  async stop(graceMs = 0): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#alarm.wake();
    await this.#loop;
    // Results held back by a schema error go to the next worker, kept on their jobs, rather than being waited for.
    this.#recorder.stopping();
    const deadWork = this.#deadWork ? this.#o.boss.offWork(QUEUES.runDead, { id: this.#deadWork, wait: true }).catch(() => {}) : Promise.resolve();
    const all = () => Promise.all([...this.#inFlight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, graceMs - HANDBACK_MARGIN_MS))));
    await Promise.race([all(), deadline]);
    clearTimeout(timer);
    if (this.#inFlight.size) {
      this.#o.logger.warn('runs still going at the end of the grace period: aborted and handed back to the queue', { runs: [...this.#inFlight.keys()] });
      for (const f of this.#inFlight.values()) f.controller.abort(new ShuttingDown('the worker is stopping'));
      await all();
    }
    await this.#recorder.drain();
    clearInterval(this.#heartbeat);
    this.#cancels.stop();
    await this.#listener?.stop();
    await deadWork;
  }

  /** The fetch loop: as many jobs as there are free slots; sleeps until a NOTIFY, a free slot or the poll interval. */
  async #run(): Promise<void> {
    const { boss, concurrency, logger } = this.#o;
    const pollMs = this.#pollMs;
    let failures = 0;
    while (this.#running) {
      this.#alarm.clear();
      // A result being stored holds no slot; at most twice WORKER_CONCURRENCY runs are held in all.
      const free = Math.min(concurrency - this.#executing, 2 * concurrency - this.#executing - this.#storing);
      // A result held back by a schema error (libs/runs/recorder.ts): claim nothing until it is stored.
      if (free <= 0 || this.#recorder.schemaBlocked) {
        await this.#alarm.sleep(pollMs);
        continue;
      }
      let jobs: Job<RunJob>[];
      try {
        // groupConcurrency 1: runs of one thread (or one buffer_one cron) never overlap, on any worker.
        jobs = await boss.fetch<RunJob>(QUEUES.run, { batchSize: Math.min(free, MAX_FETCH), groupConcurrency: 1, ignoreGroups: this.#cooling() });
        failures = 0;
      } catch (err) {
        const wait = backoffDelay(failures++);
        logger.warn(`could not fetch runs (${describeDatabaseError(err)}); retrying in ${(wait / 1000).toFixed(1)}s`);
        await this.#alarm.sleep(wait);
        continue;
      }
      if (jobs.length && !(await this.#begin(jobs))) {
        // The claim failed (its jobs went back): back off instead of fetching them again at once.
        await this.#alarm.sleep(backoffDelay(failures++));
        continue;
      }
      // A short fetch means the queue is drained for now; a full one, fetch again at once.
      if (jobs.length < Math.min(free, MAX_FETCH) && !this.#alarm.woken) {
        let idleMs = this.#coolingGroups.size ? Math.min(pollMs, GROUP_COOL_DOWN_MS) : pollMs;
        const deferredMs = await this.#untilDeferred();
        if (deferredMs !== null) idleMs = Math.min(idleMs, deferredMs);
        await this.#alarm.sleep(idleMs);
      }
    }
  }

  get #pollMs(): number {
    return this.#o.pollIntervalMs ?? (this.#listener ? LISTENING_POLL_MS : 2000);
  }

  /**
   * With LISTEN, how long until the earliest deferred run job falls due (null: none known): read
   * when announced (a snooze, a park or a deferred enqueue by any process, a supervise pass after
   * which lost runs may be retried) or once the last one read has fallen due. Polling alone (no
   * LISTEN) finds them at its next poll.
   */
  async #untilDeferred(): Promise<number | null> {
    if (!this.#listener) return null;
    if (this.#recheckDeferred || (this.#deferredAt !== null && Date.now() >= this.#deferredAt)) {
      this.#recheckDeferred = false;
      try {
        const ms = await msUntilDeferred(this.#o.pool, this.#schema, QUEUES.run);
        this.#deferredAt = ms === null ? null : Date.now() + Math.max(0, ms);
      } catch (err) {
        // Looked at again next time; meanwhile the poll interval bounds the sleep.
        this.#recheckDeferred = true;
        this.#o.logger.warn(`could not read when deferred runs fall due (${describeDatabaseError(err)})`);
        return null;
      }
    }
    // A few ms past it: the job is fetchable once its start_after has passed on the database clock.
    return this.#deferredAt === null ? null : Math.max(0, this.#deferredAt - Date.now()) + 5;
  }

  /** Claims the fetched jobs' runs and starts each; jobs with nothing to execute are acknowledged. False when the claim failed. */
  async #begin(jobs: Job<RunJob>[]): Promise<boolean> {
    const { boss, pool, logger } = this.#o;
    let claimed: ClaimedRun[];
    let waiting: Set<string>;
    let parked: Set<string>;
    let claim: Claim;
    try {
      const requests = jobs.map((j) => ({ run_id: j.data.run_id, attempt: j.retryCount + 1, group: j.groupId, jobId: j.id, retryCount: j.retryCount }));
      claim = await claimRunsLimited(pool, this.#schema, requests, this.#limits);
      ({ runs: claimed, parked } = claim);
      const claimedIds = new Set(claimed.map((r) => r.run_id));
      // Parked runs wait for room in a limit or for their thread's turn, their jobs back in the queue already.
      waiting = await pendingOf(
        pool,
        jobs.map((j) => j.data.run_id).filter((id) => !claimedIds.has(id) && !parked.has(id)),
      );
    } catch (err) {
      // Nothing was claimed: the jobs go back as they were (or expire by heartbeat if even that fails).
      logger.warn(`could not claim runs (${describeDatabaseError(err)}); their jobs go back to the queue`, { runs: jobs.length });
      await requeueRunJobs(pool, this.#schema, jobs).catch(() => {});
      return false;
    }
    const byRun = new Map(claimed.map((r) => [r.run_id, r]));
    const idle: JobAttempt[] = [];
    const notYet: Job<RunJob>[] = [];
    for (const job of jobs) {
      const run = byRun.get(job.data.run_id);
      const attempt = { id: job.id, retryCount: job.retryCount };
      if (run) this.#launch(run, attempt, heldResultOf(job.data.held));
      else if (parked.has(job.data.run_id)) continue;
      // Its turn has not come (another run of its thread or cron is running): back to the queue.
      else if (waiting.has(job.data.run_id)) notYet.push(job);
      // Finished, cancelled or deleted already: acknowledged without running anything.
      else idle.push(attempt);
    }
    if (idle.length) {
      await boss.complete(QUEUES.run, idle).catch((err) => logger.warn('could not acknowledge jobs of ended runs', { err: describeDatabaseError(err) }));
      // A fetch hands out one job per thread (or buffer_one cron): the next of each may be waiting
      // behind these, and acknowledging a job wakes no one. Fetch again rather than sleep.
      this.#alarm.wake();
    }
    if (notYet.length) {
      for (const job of notYet) if (job.groupId) this.#coolingGroups.set(job.groupId, Date.now() + GROUP_COOL_DOWN_MS);
      await requeueRunJobs(pool, this.#schema, notYet).catch((err) =>
        logger.warn('could not put back runs waiting for their turn', { err: describeDatabaseError(err) }),
      );
    }
    // Runs parked on a limit may start at their time: look then rather than at the next poll.
    for (const until of claim.parkedUntil) this.#wakeAt(until);
    return true;
  }

  #launch(run: ClaimedRun, job: JobAttempt, held?: HeldResult): void {
    // A run this process still executes under an older attempt (its job was retried after a lost
    // claim): the older execution steps aside without recording anything.
    this.#inFlight.get(run.run_id)?.controller.abort(new RunCancelled('a newer attempt of this run took over'));
    const controller = new AbortController();
    const flight: InFlight = { run, job, controller, done: Promise.resolve(), held };
    flight.done = this.#carryOut(flight).finally(() => {
      if (this.#inFlight.get(run.run_id) === flight) this.#inFlight.delete(run.run_id);
      this.#alarm.wake();
    });
    this.#inFlight.set(run.run_id, flight);
  }

  /** One run from its claim to its acknowledgement. Never throws. */
  async #carryOut({ run, job, controller, held }: InFlight): Promise<void> {
    if (held) {
      this.#o.logger.info('a result an earlier attempt could not store (schema error) is stored from its job; the agent is not run again', {
        run_id: run.run_id,
      });
      this.#storing++;
      const kept: RunResult = { run_id: run.run_id, status: held.status, output: held.output, error: held.error };
      await this.#settle(run, job, { kind: 'result', result: kept }, 0, held).finally(() => this.#storing--);
      return;
    }
    metrics.runStarted(run.graph_id);
    const startedAt = performance.now();
    this.#executing++;
    let execution: Execution;
    try {
      execution = await withLogContext({ run_id: run.run_id, cron_id: run.cron_id ?? undefined }, () => this.#execute(run, controller));
    } finally {
      // The slot is free: the fetch loop may take another run while this one's result is stored.
      this.#executing--;
      this.#alarm.wake();
    }
    this.#storing++;
    try {
      await this.#settle(run, job, execution, (performance.now() - startedAt) / 1000);
    } finally {
      this.#storing--;
    }
  }

  /** Stores what executing a run came to (or hands it back). Never throws. */
  async #settle(run: ClaimedRun, job: JobAttempt, execution: Execution, seconds: number, held?: HeldResult): Promise<void> {
    const { logger } = this.#o;
    if (execution.kind === 'handback') {
      await handBackRuns(this.#o.pool, this.#schema, [{ run_id: run.run_id, attempt: run.attempts, job }]).catch((err) =>
        logger.warn('could not hand a run back; its job is retried once its heartbeat expires', { run_id: run.run_id, err: describeDatabaseError(err) }),
      );
      return;
    }
    // Cancelled: whoever ended the run recorded it; finishing stores nothing and completes the job.
    const result: RunResult = execution.kind === 'result' ? execution.result : { run_id: run.run_id, status: 'interrupted', output: null, error: null };
    const retry = held ? held.retry : execution.kind === 'result' ? this.#retryOf(run, execution.result, execution.failure) : undefined;
    const finished: FinishedRun = {
      ...result,
      retry,
      limits: run.limits,
      thread_id: run.thread_id,
      ephemeral: run.ephemeral,
      cron_id: run.cron_id,
      scheduled_for: run.scheduled_for,
      started_at: held?.started_at ? new Date(held.started_at) : run.started_at,
      attempt: run.attempts,
      job,
      details: {
        assistant_id: run.assistant_id,
        created_at: run.created_at,
        metadata: run.metadata,
        multitask_strategy: run.multitask_strategy,
        kwargs: run.kwargs,
        values: run.values,
      },
    };
    await this.#recorder.record(finished);
    if (retry) this.#wakeAt(new Date(Date.now() + retry.delaySeconds * 1000));
    else metrics.runFinished(run.graph_id, result.status, seconds);
  }

  /**
   * Whether a failed attempt is retried (docs/flow-control.md): its error is retryable, not named
   * in non_retryable_errors, and the run's policy has attempts left. The next attempt waits for
   * the provider's Retry-After, else the policy's backoff; a Retry-After also pauses the run's
   * named limits, so one 429 does not become a hundred.
   */
  #retryOf(run: ClaimedRun, result: RunResult, failure: FailureClass | undefined): RetryRequest | undefined {
    if (!failure?.retryable || !result.error || (result.status !== 'error' && result.status !== 'timeout')) return undefined;
    const config = { ...run.assistant_config, ...(run.kwargs.config ?? {}) };
    const policy = resolveRetryPolicy([
      (run.kwargs as Record<string, unknown>).retry_policy,
      config.retry_policy,
      this.#o.agents.flow.graphs.get(run.graph_id)?.retry_policy,
    ]);
    const attempt = (run.attempt_log?.length ?? 0) + 1;
    if (attempt >= policy.max_attempts || policy.non_retryable_errors.includes(result.error.error)) return undefined;
    const delaySeconds = retryDelaySeconds(policy, attempt, failure.retryAfterSeconds);
    const named = run.limits.filter((l) => !l.startsWith('assistant:'));
    this.#o.logger.info(`run attempt ${attempt} of ${policy.max_attempts} failed; retrying in ${delaySeconds.toFixed(1)}s`, {
      run_id: run.run_id,
      cron_id: run.cron_id ?? undefined,
      err: result.error.message,
    });
    return {
      delaySeconds,
      ...(failure.retryAfterSeconds !== null && named.length ? { pause: { limits: named, seconds: delaySeconds } } : {}),
    };
  }

  #cancel(runIds: string[], why: string): void {
    for (const id of runIds) this.#inFlight.get(id)?.controller.abort(new RunCancelled(why));
  }

  /** Keeps the held jobs' pg-boss heartbeats fresh (fenced to the attempts fetched). */
  async #touch(): Promise<void> {
    const jobs = [...this.#inFlight.values()].map((f) => f.job);
    if (jobs.length === 0) return;
    await this.#o.boss.touch(QUEUES.run, jobs).catch((err) => this.#o.logger.warn('could not refresh run heartbeats', { err: describeDatabaseError(err) }));
  }

  /** Runs the agent under its timeout, until it answers or its run is cancelled or handed back. */
  async #execute(run: ClaimedRun, controller: AbortController): Promise<Execution> {
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
      runLogger.debug('run succeeded', { ms: Date.now() - started });
      activity.count('succeeded');
      return result('success', output ?? null, null);
    } catch (err) {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof RunTimeout) {
        runLogger.debug('run timed out', { ms: Date.now() - started });
        activity.count('timed_out', { run_id: run.run_id, err: reason.message });
        return { ...result('timeout', null, { error: 'TimeoutError', message: reason.message }), failure: classifyFailure(reason, true) } as Execution;
      }
      if (controller.signal.aborted && reason instanceof RunCancelled) {
        runLogger.debug('run cancelled; its agent was aborted', { ms: Date.now() - started, why: reason.message });
        activity.count('cancelled');
        return { kind: 'cancelled' };
      }
      if (controller.signal.aborted && reason instanceof ShuttingDown) {
        runLogger.warn('run aborted by shutdown; handed back to the queue', { ms: Date.now() - started });
        return { kind: 'handback' };
      }
      const e = toError(err);
      runLogger.debug('run failed', { err: e.message, ms: Date.now() - started });
      activity.count('failed', { run_id: run.run_id, err: e.message.slice(0, 200) });
      return { ...result('error', null, { error: e.name, message: e.message }), failure: classifyFailure(err, false) } as Execution;
    } finally {
      clearTimeout(timer);
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

  /**
   * Every attempt of these runs' jobs was lost (workers died): end each run as error, with why;
   * a run whose result was kept on its job (a schema error, recorder.ts) ends with that result.
   */
  async #lost(jobs: Job<RunJob>[]): Promise<void> {
    for (const j of jobs) {
      const held = heldResultOf(j.data.held);
      if (held && (await endRuns(this.#o.pool, this.#o.boss, [j.data.run_id], held)).length) {
        this.#o.logger.info('a run whose workers were lost ends with the result an attempt kept on its job; the agent is not run again', {
          run_id: j.data.run_id,
        });
      }
    }
    const ended = await endRuns(
      this.#o.pool,
      this.#o.boss,
      jobs.filter((j) => !heldResultOf(j.data.held)).map((j) => j.data.run_id),
      { status: 'error', error: { error: 'WorkerLost', message: 'the run was started but its worker stopped responding on every attempt' } },
    );
    if (ended.length) this.#o.logger.warn('runs ended after their workers were lost', { runs: ended });
  }

  /**
   * Wakes the fetch loop at `at` (a parked run's or a retry's start), so a run that may start then
   * does not wait for the next poll. One timer: the earliest pending wake-up.
   */
  #wakeAt(at: Date): void {
    const ms = at.getTime() - Date.now();
    if (ms >= this.#pollMs || (this.#wakeTimer && this.#wakeTimerAt <= at.getTime())) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeTimerAt = at.getTime();
    this.#wakeTimer = setTimeout(
      () => {
        this.#wakeTimer = undefined;
        this.#alarm.wake();
      },
      Math.max(0, ms) + 5,
    );
    this.#wakeTimer.unref();
  }

  /** The groups still cooling down (the expired ones are forgotten). */
  #cooling(): string[] {
    const now = Date.now();
    for (const [group, until] of this.#coolingGroups) if (until <= now) this.#coolingGroups.delete(group);
    return [...this.#coolingGroups.keys()];
  }
}
