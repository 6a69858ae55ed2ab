import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../db/index.ts';
import { firePasses, msUntilDue, planDue } from '../firing/index.ts';
import type { PassResult, ScheduleSource } from '../firing/index.ts';
import { uuidv5 } from '../ids/index.ts';
import type { Logger } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES, transactionDb } from '../queue/index.ts';
import type { MaintenanceJobData } from './types.ts';

// Maintenance jobs fire on the same schedule-table engine as crons (libs/firing), in the same
// scheduler loop (CronScheduler's `sources`): due rows are claimed FOR UPDATE SKIP LOCKED, the
// occurrence planner decides what fires (missed policy 'latest': after downtime the most recent
// occurrence fires once, the rest are counted), and one pg-boss job per occurrence, its id derived
// from (job, scheduled_for), is enqueued in the transaction that advances next_run_date. Exactly
// once per occurrence, with any number of schedulers.

const MAINTENANCE_NAMESPACE = '3b9a6f0e-7c55-5d1e-9f31-6d61696e7421';

/** The pg-boss job id of a job's occurrence: a repeated enqueue of it is a no-op. */
export const occurrenceJobId = (job: string, scheduledFor: Date): string => uuidv5(`${job}@${scheduledFor.toISOString()}`, MAINTENANCE_NAMESPACE);

const CLAIM_DUE = `
  SELECT job_name, schedule, timezone, next_run_date, now() AS now
    FROM maintenance_jobs
   WHERE enabled AND next_run_date <= now()
   ORDER BY next_run_date
   LIMIT $1
     FOR UPDATE SKIP LOCKED`;

const ADVANCE = `
  UPDATE maintenance_jobs m
     SET next_run_date = v.next_run_date,
         last_scheduled_for = coalesce(v.fired, m.last_scheduled_for),
         missed_total = m.missed_total + v.missed,
         last_run_error = coalesce(v.error, m.last_run_error)
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int[], $5::text[]) AS v(job_name, next_run_date, fired, missed, error)
   WHERE m.job_name = v.job_name`;

interface DueJob {
  job_name: string;
  schedule: string;
  timezone: string;
  next_run_date: Date;
  now: Date;
}

const BATCH = 100;
const LIMITS = { missedMax: 1, graceMs: 0, ledgerCap: 0 };

/** The maintenance_jobs table as a schedule source. */
export class MaintenanceScheduler implements ScheduleSource {
  #pool: Pool;
  #boss: PgBoss;
  #logger: Logger;

  constructor(options: { pool: Pool; boss: PgBoss; logger: Logger }) {
    this.#pool = options.pool;
    this.#boss = options.boss;
    this.#logger = options.logger;
  }

  /** Fires every due occurrence: one transaction per batch. */
  pass(): Promise<PassResult> {
    return firePasses(
      this.#pool,
      BATCH,
      (client) => this.#batch(client),
      async (r) => metrics.occurrencesFired('maintenance', r.lags),
    );
  }

  async #batch(client: PoolClient): Promise<PassResult & { lags: number[] }> {
    const { rows } = await client.query<DueJob>(CLAIM_DUE, [BATCH]);
    if (rows.length === 0) return { claimed: 0, fired: 0, skipped: 0, lags: [] };
    const jobs: { id: string; data: MaintenanceJobData; group: { id: string } }[] = [];
    const advance = {
      names: [] as string[],
      next: [] as (Date | null)[],
      fired: [] as (Date | null)[],
      missed: [] as number[],
      error: [] as (string | null)[],
    };
    let skipped = 0;
    const lags: number[] = [];
    for (const row of rows) {
      const { plan, next, error } = planDue(row, LIMITS);
      let fired: Date | null = null;
      for (const f of plan?.fire ?? []) {
        jobs.push({
          id: occurrenceJobId(row.job_name, f.scheduled_for),
          data: { job: row.job_name, scheduled_for: f.scheduled_for.toISOString(), trigger: 'schedule' },
          // One execution of a job at a time, on any worker (the worker's groupConcurrency 1).
          group: { id: row.job_name },
        });
        fired = f.scheduled_for;
        lags.push((row.now.getTime() - f.scheduled_for.getTime()) / 1000);
      }
      // Its stored schedule no longer parses: it stops, visibly, until a registration gives it a valid one.
      const why = error === null ? null : `scheduler could not plan this maintenance job: ${error}`;
      if (why) this.#logger.error(why, { job: row.job_name });
      const missed = plan?.missedCount ?? 0;
      skipped += missed;
      advance.names.push(row.job_name);
      advance.next.push(next);
      advance.fired.push(fired);
      advance.missed.push(missed);
      advance.error.push(why);
    }
    if (jobs.length) await this.#boss.insert(QUEUES.maintenance, jobs, { db: transactionDb(client) });
    await client.query(ADVANCE, [advance.names, advance.next, advance.fired, advance.missed, advance.error]);
    if (skipped) this.#logger.info('maintenance occurrences missed while no scheduler ran', { count: skipped });
    return { claimed: rows.length, fired: jobs.length, skipped, lags };
  }

  msUntilNext(): Promise<number | null> {
    return msUntilDue(this.#pool, 'maintenance_jobs');
  }
}

/** Enqueues a job to run now (admin trigger); answers the pg-boss job id. */
export async function enqueueNow(boss: PgBoss, job: string): Promise<string> {
  const id = randomUUID();
  await boss.insert(QUEUES.maintenance, [{ id, data: { job, scheduled_for: null, trigger: 'manual' } satisfies MaintenanceJobData, group: { id: job } }]);
  return id;
}
