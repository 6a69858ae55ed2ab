import type { Pool } from '../db/index.ts';
import { Listener, backoffDelay, describeDatabaseError, retryConflicts, withTransaction } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { parseSchedule } from '../schedule/index.ts';
import { activeRuns, cancelSuperseded, fireOccurrences, firingCron, overlapAllowance, runsToSupersede } from './fire.ts';
import type { Firing, Skip, Superseded } from './fire.ts';
import { planOccurrences } from './plan.ts';
import type { MissedPolicy, PlanLimits } from './plan.ts';
import type { CronPayload, OnRunCompleted, OverlapPolicy } from './types.ts';

// Where a cron fires. A pass claims due crons (enabled, next_run_date <= now()) in batches with
// FOR UPDATE SKIP LOCKED, so any number of schedulers share the work, and in ONE transaction per
// batch writes each occurrence's ledger row, run and pg-boss job (fireOccurrences) and advances
// next_run_date and fired_through. A scheduler killed at any instant either committed all of that
// or none of it; the ledger row of (cron_id, scheduled_for) is written first and guards the rest,
// so a repeat fires nothing.
// Lock order (libs/runs/lifecycle.ts): the pass holds its crons (SKIP LOCKED: it never waits for
// them), then only inserts rows (threads, runs, ledger rows, jobs) and updates the crons it holds.

export const CRON_CHANGED_CHANNEL = 'agentcron_cron_changed';

const CLAIM_DUE = `
  SELECT c.cron_id, c.assistant_id, a.graph_id, c.thread_id, c.user_id, c.schedule, c.timezone,
         c.end_time, c.on_run_completed, c.payload, c.next_run_date, c.missed_policy, c.overlap_policy,
         now() AS now
    FROM crons c
    JOIN assistants a USING (assistant_id)
   WHERE c.enabled AND c.next_run_date <= now()
   ORDER BY c.next_run_date
   LIMIT $1
     FOR UPDATE OF c SKIP LOCKED`;

// fired_through only moves forward; next_run_date stays after it (crons_next_after_fired).
const ADVANCE = `
  UPDATE crons c
     SET next_run_date = v.next_run_date,
         fired_through = greatest(c.fired_through, v.fired_through),
         enabled = c.enabled AND NOT v.finished,
         finished_at = CASE WHEN v.finished THEN now() ELSE c.finished_at END,
         last_run_error = COALESCE(v.error, c.last_run_error)
    FROM unnest($1::uuid[], $2::timestamptz[], $3::boolean[], $4::text[], $5::timestamptz[])
         AS v(cron_id, next_run_date, finished, error, fired_through)
   WHERE c.cron_id = v.cron_id`;

// How long to sleep: until the earliest next_run_date this scheduler could claim, per the
// database clock. Rows another scheduler or an API transaction holds are skipped, not waited
// for (FOR SHARE SKIP LOCKED): counting them made a pass spin while one due row was locked.
// Whoever holds them fires them or, committing a change, wakes every scheduler (NOTIFY).
const WAIT_MS = `
  SELECT (extract(epoch FROM (next_run_date - clock_timestamp())) * 1000)::float8 AS wait_ms
    FROM crons WHERE enabled AND next_run_date IS NOT NULL
   ORDER BY next_run_date
   LIMIT 1
     FOR SHARE SKIP LOCKED`;

interface DueRow {
  cron_id: string;
  assistant_id: string;
  graph_id: string;
  thread_id: string | null;
  user_id: string;
  schedule: string;
  timezone: string | null;
  end_time: Date | null;
  on_run_completed: OnRunCompleted | null;
  payload: CronPayload;
  next_run_date: Date;
  missed_policy: MissedPolicy;
  overlap_policy: OverlapPolicy;
  now: Date;
}

export interface SchedulerOptions {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  /** Longest sleep between passes (CRON_POLL_INTERVAL_SECONDS). */
  pollIntervalSeconds: number;
  batchSize: number;
  limits: PlanLimits;
  /** Told after every completed pass (heartbeat's last_tick_at). */
  onTick?: () => void;
  /** Connection string for the dedicated LISTEN connection. */
  listenUrl: string;
  /** Other schedules this loop fires after the crons on every pass (the built-in maintenance jobs). */
  sources?: ScheduleSource[];
}

/** A schedule table fired like crons (claim due rows SKIP LOCKED, enqueue, advance, one transaction). */
export interface ScheduleSource {
  /** Fires everything due. */
  pass(): Promise<PassResult>;
  /** Milliseconds until its earliest next occurrence (database clock), or null. */
  msUntilNext(): Promise<number | null>;
}

export interface PassResult {
  claimed: number;
  fired: number;
  skipped: number;
}

export class CronScheduler {
  #o: SchedulerOptions;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #woken = false;
  #listener: Listener | undefined;

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#listener = new Listener({
      connectionString: this.#o.listenUrl,
      channels: [CRON_CHANGED_CHANNEL],
      applicationName: 'agentcron-scheduler-listen',
      logger: this.#o.logger,
      onNotification: () => this.#wakeUp(),
      // Changes made while the connection was down were not announced: look now.
      onReconnect: () => this.#wakeUp(),
    });
    // Not awaited: polling covers a listener that cannot connect yet.
    void this.#listener.start();
    this.#loop = this.#run();
  }

  /** Stops after the pass in progress (its transaction commits or rolls back whole). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wakeUp();
    await this.#loop;
    await this.#listener?.stop();
  }

  /** Fire every due occurrence now: passes until a batch comes back short. */
  async runDue(): Promise<PassResult> {
    const total: PassResult = { claimed: 0, fired: 0, skipped: 0 };
    for (;;) {
      const r = await this.pass();
      total.claimed += r.claimed;
      total.fired += r.fired;
      total.skipped += r.skipped;
      if (r.claimed < this.#o.batchSize) return total;
    }
  }

  /**
   * One batch: claim due crons, fire their occurrences, advance them, commit; then stop the runs
   * that thread crons with multitask_strategy interrupt or rollback superseded.
   */
  async pass(): Promise<PassResult> {
    const { result, superseded, observed } = await this.#firePass();
    metrics.occurrencesFired('cron', observed.lags);
    metrics.occurrencesSkipped(observed.skipReasons);
    // After the commit, outside the crons' locks (see runsToSupersede); a failure is logged and the new runs wait their turn.
    await cancelSuperseded(this.#o.pool, this.#o.boss, superseded, this.#o.logger);
    return result;
  }

  async #firePass(): Promise<{ result: PassResult; superseded: Superseded; observed: { lags: number[]; skipReasons: string[] } }> {
    const { pool, boss, batchSize, limits, logger } = this.#o;
    // A deadlock victim wrote nothing: the whole batch is claimed and fired again, never lost.
    return retryConflicts(() => withTransaction(pool, async (client) => {
      await client.query(`SET LOCAL agentcron.quiet = 'on'`);
      const { rows } = await client.query<DueRow>(CLAIM_DUE, [batchSize]);
      if (rows.length === 0) {
        return { result: { claimed: 0, fired: 0, skipped: 0 }, superseded: { interrupt: [], rollback: [] }, observed: { lags: [], skipReasons: [] } };
      }
      const active = await activeRuns(client, rows);
      const firings: Firing[] = [];
      const skips: Skip[] = [];
      const advance = {
        ids: [] as string[],
        next: [] as (Date | null)[],
        finished: [] as boolean[],
        error: [] as (string | null)[],
        firedThrough: [] as (Date | null)[],
      };
      for (const row of rows) {
        let next: Date | null;
        let error: string | null = null;
        let firedThrough: Date | null = null;
        try {
          const schedule = parseSchedule(row.schedule, { timezone: row.timezone, allowSeconds: true });
          const plan = planOccurrences(
            { schedule, nextRunDate: row.next_run_date, endTime: row.end_time, missedPolicy: row.missed_policy },
            row.now,
            limits,
          );
          next = plan.nextRunDate;
          firedThrough = latest([...plan.fire, ...plan.skipped].map((o) => o.scheduled_for));
          for (const s of plan.skipped) skips.push({ cron_id: row.cron_id, ...s });
          const allowed = overlapAllowance(row, active);
          const fire = plan.fire.slice(Math.max(0, plan.fire.length - allowed));
          for (const f of plan.fire.slice(0, plan.fire.length - fire.length)) {
            skips.push({ cron_id: row.cron_id, scheduled_for: f.scheduled_for, reason: 'overlap' });
          }
          const cron = firingCron(row, row.graph_id);
          for (const f of fire) firings.push({ cron, scheduled_for: f.scheduled_for, skipped_count: f.skipped_count, trigger: 'schedule' });
        } catch (err) {
          // A cron that cannot be planned (its stored schedule no longer parses) stops, visibly, instead of blocking the batch.
          error = `scheduler could not plan this cron: ${(err as Error).message}`;
          logger.error(error, { cron_id: row.cron_id });
          next = null;
        }
        advance.ids.push(row.cron_id);
        advance.next.push(next);
        advance.finished.push(next === null);
        advance.error.push(error);
        advance.firedThrough.push(firedThrough);
      }
      const written = await fireOccurrences(client, boss, firings, skips);
      const superseded = await runsToSupersede(client, written);
      await client.query(ADVANCE, [advance.ids, advance.next, advance.finished, advance.error, advance.firedThrough]);
      if (skips.length) logger.info('occurrences skipped', { count: skips.length, reasons: countBy(skips.map((s) => s.reason)) });
      // Fire lag: enqueue time (this transaction's clock) minus scheduled_for; counted after commit.
      const lags = written.map((r) => (rows[0].now.getTime() - r.scheduled_for!.getTime()) / 1000);
      return {
        result: { claimed: rows.length, fired: written.length, skipped: skips.length },
        superseded,
        observed: { lags, skipReasons: skips.map((sk) => sk.reason) },
      };
    }));
  }

  async #run(): Promise<void> {
    const { logger, pollIntervalSeconds, pool } = this.#o;
    let failures = 0;
    while (this.#running) {
      this.#woken = false;
      let waitMs = pollIntervalSeconds * 1000;
      try {
        const started = performance.now();
        const result = await this.runDue();
        if (result.claimed) logger.debug('pass', { ...result });
        const sourcesWait = await this.#passSources();
        metrics.schedulerTick((performance.now() - started) / 1000);
        this.#o.onTick?.();
        const { rows } = await pool.query<{ wait_ms: number | null }>(WAIT_MS);
        for (const until of [rows[0]?.wait_ms, sourcesWait]) {
          if (until !== null && until !== undefined) waitMs = Math.min(waitMs, Math.max(0, Math.ceil(until) + 1));
        }
        failures = 0;
      } catch (err) {
        // Back off with jitter (at most 5 s, so firing resumes soon after the database is back); never let the loop die.
        waitMs = backoffDelay(failures++);
        logger.error(`scheduler pass failed (${describeDatabaseError(err)}); retrying in ${(waitMs / 1000).toFixed(1)}s`);
      }
      if (!this.#running) break;
      if (!this.#woken) await this.#sleep(waitMs);
    }
  }

  /** Fires the other sources; a failing one is logged and never stops the loop or the crons. Answers the earliest wait. */
  async #passSources(): Promise<number | null> {
    let wait: number | null = null;
    for (const source of this.#o.sources ?? []) {
      try {
        await source.pass();
        const w = await source.msUntilNext();
        if (w !== null) wait = wait === null ? w : Math.min(wait, w);
      } catch (err) {
        this.#o.logger.error('scheduler pass over maintenance jobs failed', { err: (err as Error).message });
      }
    }
    return wait;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  #wakeUp(): void {
    this.#woken = true;
    this.#wake?.();
  }
}

/** The latest of some instants, or null. */
function latest(instants: Date[]): Date | null {
  let out: Date | null = null;
  for (const t of instants) if (!out || t.getTime() > out.getTime()) out = t;
  return out;
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
