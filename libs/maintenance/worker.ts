import type { Job } from 'pg-boss';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { toError } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES } from '../queue/index.ts';
import type { MaintenanceSettings } from './settings.ts';
import type { MaintenanceJob, MaintenanceJobData } from './types.ts';

// Executes maintenance jobs from their own queue, one at a time per process (and one execution of
// a given job at a time across workers), so they never take a run's place. A job that throws is
// recorded (last_run_error, logged) and its pg-boss job completed all the same: it is retried at
// its next occurrence, never in a loop, and nothing it does can stop the worker.

const STARTED = `
  UPDATE maintenance_jobs SET last_run_at = now(), last_run_status = 'running' WHERE job_name = $1`;

const FINISHED = `
  UPDATE maintenance_jobs
     SET last_finished_at = now(), last_run_status = $2, last_run_error = $3, last_duration_ms = $4, last_result = $5,
         runs_total = runs_total + 1, failures_total = failures_total + CASE WHEN $2 = 'error' THEN 1 ELSE 0 END
   WHERE job_name = $1`;

export interface MaintenanceWorkerOptions {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  settings: MaintenanceSettings;
  /** The jobs this worker can execute, by name (builtinJobs(); tests add their own). */
  jobs: MaintenanceJob[];
  /** The process LISTENs on pg-boss's channel and hands this worker its notifications (wake()): polls a minute apart then, else every 5 s. */
  listening?: boolean;
}

export interface Execution {
  job: string;
  status: 'success' | 'error';
  error: string | null;
  duration_ms: number;
  result: Record<string, unknown> | null;
}

export class MaintenanceWorker {
  #o: MaintenanceWorkerOptions;
  #jobs: Map<string, MaintenanceJob>;
  #work: string | undefined;

  constructor(options: MaintenanceWorkerOptions) {
    this.#o = options;
    this.#jobs = new Map(options.jobs.map((j) => [j.name, j]));
  }

  async start(): Promise<void> {
    const pollSeconds = this.#o.listening ? 60 : 5;
    this.#work = await this.#o.boss.work<MaintenanceJobData>(
      QUEUES.maintenance,
      { batchSize: 1, localConcurrency: 1, groupConcurrency: 1, pollingIntervalSeconds: pollSeconds, notifyPollingIntervalSeconds: Math.max(30, pollSeconds) },
      async ([job]: Job<MaintenanceJobData>[]) => {
        const scheduledFor = job.data.scheduled_for ? new Date(job.data.scheduled_for) : null;
        await this.execute(job.data.job, scheduledFor, job.signal);
      },
    );
  }

  async stop(): Promise<void> {
    await this.#o.boss.offWork(QUEUES.maintenance, { wait: true });
  }

  /** A notification on pg-boss's channel (the process's LISTEN): a maintenance job was enqueued. */
  wake(payload: string): void {
    if (payload === QUEUES.maintenance && this.#work) this.#o.boss.notifyWorker(this.#work);
  }

  /** Runs one job here and now and records the execution; never throws. */
  async execute(name: string, scheduledFor: Date | null = null, signal: AbortSignal = new AbortController().signal): Promise<Execution> {
    const { pool, boss, logger, settings } = this.#o;
    const log = logger.child({ maintenance_job: name });
    const started = performance.now();
    let execution: Execution;
    try {
      const job = this.#jobs.get(name);
      if (!job) throw new Error(`no maintenance job "${name}" on this worker (known: ${[...this.#jobs.keys()].join(', ')})`);
      await pool.query(STARTED, [name]);
      const result = await job.run({ pool, boss, logger: log, settings, scheduledFor, signal });
      execution = { job: name, status: 'success', error: null, duration_ms: Math.round(performance.now() - started), result };
      // The result is stored (GET /admin/maintenance); a once-a-minute job need not repeat it in the log.
      log.info('maintenance job done', { ms: execution.duration_ms });
      log.debug('maintenance job result', { result });
    } catch (err) {
      const e = toError(err);
      execution = { job: name, status: 'error', error: e.message, duration_ms: Math.round(performance.now() - started), result: null };
      log.error('maintenance job failed; it runs again at its next occurrence', { err: e.message, stack: e.stack, ms: execution.duration_ms });
    }
    metrics.maintenanceRun(name, execution.status, execution.duration_ms / 1000);
    try {
      await pool.query(FINISHED, [
        name,
        execution.status,
        execution.error,
        execution.duration_ms,
        execution.result === null ? null : JSON.stringify(execution.result),
      ]);
    } catch (err) {
      log.error('could not record the maintenance job execution', { err: toError(err).message });
    }
    return execution;
  }
}
