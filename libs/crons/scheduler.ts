import type { Pool, PoolClient } from '../db/index.ts';
import { FiringLoop, firePasses, msUntilDue, planDue } from '../firing/index.ts';
import type { MissedPolicy, PassResult, PlanLimits, ScheduleSource } from '../firing/index.ts';
import type { Logger } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { analyzeQueueTableSql, runQueueTableSql } from '../queue/index.ts';
import { describeDatabaseError, prepared } from '../db/index.ts';
import { activeRuns, cancelSuperseded, fireOccurrences, firingCron, overlapAllowance, runsToSupersede } from './fire.ts';
import type { Firing, Skip, Superseded } from './fire.ts';
import type { CronPayload, OnRunCompleted, OverlapPolicy } from './types.ts';

// Where a cron fires: the crons table on the schedule-table engine (libs/firing). A pass claims
// due crons (enabled, next_run_date <= now()) with FOR NO KEY UPDATE SKIP LOCKED, and in ONE
// transaction per batch writes each occurrence's ledger row, run and pg-boss job
// (fireOccurrences) and advances next_run_date and fired_through. The ledger row of (cron_id, scheduled_for) is written
// first and guards the rest, so a repeat fires nothing.
// Lock order (libs/runs/lifecycle.ts): the pass holds its crons (SKIP LOCKED: it never waits for
// them), then only inserts rows (threads, runs, ledger rows, jobs) and updates the crons it holds.
// NO KEY UPDATE, not UPDATE: two passes still exclude each other, but a run's finish, which holds
// its cron FOR KEY SHARE while it writes the cron's outcome (cron_last_runs), never waits for a
// pass and a pass never skips a cron a finish holds (issue 21, migrations/024).
// The runs that interrupt/rollback supersede are cancelled after the commit, outside those locks.

export const CRON_CHANGED_CHANNEL = 'agentcron_cron_changed';

const CLAIM_DUE = `
  SELECT c.cron_id, c.assistant_id, a.graph_id, c.thread_id, c.user_id, c.schedule, c.timezone,
         c.end_time, c.on_run_completed, c.payload, c.next_run_date, c.missed_policy, c.overlap_policy,
         c.jitter_seconds, now() AS now
    FROM crons c
    JOIN assistants a USING (assistant_id)
   WHERE c.enabled AND c.next_run_date <= now() + $2::int * interval '1 millisecond'
     AND (c.next_run_date <= now() OR (c.thread_id IS NULL AND c.overlap_policy = 'allow'))
   ORDER BY c.next_run_date
   LIMIT $1
     FOR NO KEY UPDATE OF c SKIP LOCKED`;

// When the loop looks next: the earliest next_run_date, or lookahead ($1 ms) before that of a cron
// fired ahead (the claim's rule above), whichever comes first.
const MS_UNTIL_NEXT_AHEAD = `
  SELECT (extract(epoch FROM (least(
            (SELECT next_run_date FROM crons WHERE enabled AND next_run_date IS NOT NULL ORDER BY next_run_date LIMIT 1),
            (SELECT next_run_date - $1::int * interval '1 millisecond' FROM crons
              WHERE enabled AND next_run_date IS NOT NULL AND thread_id IS NULL AND overlap_policy = 'allow'
              ORDER BY next_run_date LIMIT 1)) - clock_timestamp())) * 1000)::float8 AS wait_ms`;

/**
 * Whether the scheduler fires this cron's occurrences ahead of their instant (CRON_LOOKAHEAD_MS):
 * a stateless cron whose firing does not depend on the state at the instant. A thread cron's run
 * would sit on its user's thread early; overlap_policy skip and buffer_one decide by the runs
 * still going at the instant. The claim (CLAIM_DUE) and MS_UNTIL_NEXT_AHEAD say the same in SQL.
 */
export const firesAhead = (cron: { thread_id: string | null; overlap_policy: OverlapPolicy }): boolean =>
  cron.thread_id === null && cron.overlap_policy === 'allow';

// fired_through only moves forward; next_run_date stays after it (crons_next_after_fired).
const ADVANCE = `
  UPDATE crons c
     SET next_run_date = v.next_run_date,
         fired_through = greatest(c.fired_through, v.fired_through),
         enabled = c.enabled AND NOT v.finished,
         finished_at = CASE WHEN v.finished THEN now() ELSE c.finished_at END
    FROM unnest($1::uuid[], $2::timestamptz[], $3::boolean[], $4::timestamptz[])
         AS v(cron_id, next_run_date, finished, fired_through)
   WHERE c.cron_id = v.cron_id`;

// Why a cron stopped (a schedule that no longer parses), shown as its last_run_error. Its row in
// cron_last_runs (lock order 4b: after the pass's other rows), sorted by cron_id; the cron's last
// run itself is kept.
const STOPPED_ERROR = `
  INSERT INTO cron_last_runs AS l (cron_id, last_run_error)
  SELECT * FROM unnest($1::uuid[], $2::text[])
  ON CONFLICT (cron_id) DO UPDATE SET last_run_error = EXCLUDED.last_run_error`;

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
  jitter_seconds: number;
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
  /**
   * CRON_LOOKAHEAD_MS: how long before its instant an occurrence of a cron that firesAhead is
   * fired (its run and job written, the job's start_after at the instant); 0: at the instant.
   */
  lookaheadMs?: number;
  /** Told after every completed round (heartbeat's last_tick_at). */
  onTick?: () => void;
  /** Connection string for the dedicated LISTEN connection; null: none, the loop polls every second. */
  listenUrl: string | null;
  /** Other schedule tables this loop fires after the crons on every round (the built-in maintenance jobs). */
  sources?: ScheduleSource[];
  /** pg-boss's schema (PGBOSS_SCHEMA; default pgboss): its run queue's table is analyzed after a herd (see #analyzeQueue). */
  queueSchema?: string;
  /**
   * Since when this scheduler has been running (default: when start() is called): occurrences
   * due since then are late, never missed (PlanLimits.coveredFrom). runDue() alone covers nothing.
   */
  runningSince?: Date;
  /**
   * Since when some scheduler of the deployment has been running without a break up to `own`
   * (this one's start): what fell due since then is late, never missed, whichever scheduler
   * fires it, so one that takes over from another (a rolling deploy: the new starts, the old
   * stops) fires what the other could not. Asked at the first pass (again at the next while it
   * fails); unset: this scheduler's own start alone.
   */
  coveredBefore?: (own: Date) => Promise<Date>;
}

/** A table's statistics are refreshed at most this often by one scheduler. */
const ANALYZE_EVERY_MS = 60_000;

interface CronBatch extends PassResult {
  superseded: Superseded;
  lags: number[];
  skipReasons: string[];
}

/** The crons table as a schedule source, and the scheduler loop that fires it (with any other sources). */
export class CronScheduler implements ScheduleSource {
  #o: SchedulerOptions;
  #loop: FiringLoop;
  #analyzedAt = 0;
  #coveredFrom: Date | null = null;
  /** coveredBefore has answered (or there is none). */
  #coverageKnown = false;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#loop = new FiringLoop({
      pool: options.pool,
      logger: options.logger,
      pollIntervalSeconds: options.pollIntervalSeconds,
      sources: [this, ...(options.sources ?? [])],
      listenUrl: options.listenUrl,
      channels: [CRON_CHANGED_CHANNEL],
      onTick: options.onTick,
    });
  }

  start(): Promise<void> {
    this.#coveredFrom ??= this.#o.runningSince ?? new Date();
    return this.#loop.start();
  }

  /** Stops after the pass in progress (its transaction commits or rolls back whole). */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Fires every due occurrence now: passes until a batch comes back short. */
  runDue(): Promise<PassResult> {
    return this.pass();
  }

  async pass(): Promise<PassResult> {
    const { pool, boss, batchSize, logger } = this.#o;
    if (!this.#coverageKnown && this.#coveredFrom) {
      try {
        const since = this.#o.coveredBefore ? await this.#o.coveredBefore(this.#coveredFrom) : this.#coveredFrom;
        if (since.getTime() < this.#coveredFrom.getTime()) this.#coveredFrom = since;
        this.#coverageKnown = true;
      } catch (err) {
        logger.debug('could not read since when schedulers have been running; asking again at the next pass', { err: describeDatabaseError(err) });
      }
    }
    return firePasses(
      pool,
      batchSize,
      (client) => this.#batch(client),
      async (r) => {
        metrics.occurrencesFired('cron', r.lags);
        metrics.occurrencesSkipped(r.skipReasons);
        // After the commit, outside the crons' locks; a failure is logged and the new runs wait their turn.
        await cancelSuperseded(pool, boss, r.superseded, logger);
        // A full batch: more are due at once (a herd), the run queue grows by thousands of jobs.
        if (r.claimed >= batchSize && r.fired > 0) this.#analyzeQueue();
      },
    );
  }

  /**
   * Refreshes the planner's statistics of the run queue's job table, in the background (at most
   * once a minute). pg-boss's fetch orders the queued jobs by an index and stops at its batch; but
   * planned with statistics from before a herd (a fresh table, or one of completed jobs) it reads
   * and sorts every queued job instead (bitmap heap scan + sort): 50 ms a fetch with 100,000
   * queued, most of the database's time in a herd. Autovacuum analyzes after a minute or so, too
   * late for a herd that lasts seconds. A failure (not the table's owner, a lock) changes nothing.
   */
  #analyzeQueue(): void {
    const now = Date.now();
    if (now - this.#analyzedAt < ANALYZE_EVERY_MS) return;
    this.#analyzedAt = now;
    const schema = this.#o.queueSchema ?? 'pgboss';
    void (async () => {
      const { rows } = await this.#o.pool.query<{ table_name: string }>(runQueueTableSql(schema));
      if (rows[0]) await this.#o.pool.query(analyzeQueueTableSql(schema, rows[0].table_name));
    })().catch((err: unknown) => this.#o.logger.debug('could not analyze the run queue', { err: describeDatabaseError(err) }));
  }

  async msUntilNext(): Promise<number | null> {
    const ahead = this.#o.lookaheadMs ?? 0;
    if (ahead <= 0) return msUntilDue(this.#o.pool, 'crons');
    const { rows } = await this.#o.pool.query<{ wait_ms: number | null }>(prepared(this.#o.pool, MS_UNTIL_NEXT_AHEAD, [ahead]));
    return rows[0]?.wait_ms ?? null;
  }

  /** One batch: claim due crons, plan them, fire their occurrences, advance them (the caller commits). */
  async #batch(client: PoolClient): Promise<CronBatch> {
    const { boss, batchSize, limits, logger } = this.#o;
    await client.query(`SET LOCAL agentcron.quiet = 'on'`);
    const ahead = this.#o.lookaheadMs ?? 0;
    const { rows } = await client.query<DueRow>(prepared(client, CLAIM_DUE, [batchSize, ahead]));
    const none: CronBatch = { claimed: 0, fired: 0, skipped: 0, superseded: { interrupt: [], rollback: [] }, lags: [], skipReasons: [] };
    if (rows.length === 0) return none;
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
      const aheadUntil = ahead > 0 && firesAhead(row) ? new Date(row.now.getTime() + ahead) : null;
      const { plan, next, firedThrough, error } = planDue(row, { ...limits, coveredFrom: this.#coveredFrom }, aheadUntil);
      if (plan) {
        for (const sk of plan.skipped) skips.push({ cron_id: row.cron_id, ...sk });
        // The overlap rule may hold back some of the occurrences the plan fires.
        const allowed = overlapAllowance(row, active);
        const fire = plan.fire.slice(Math.max(0, plan.fire.length - allowed));
        for (const f of plan.fire.slice(0, plan.fire.length - fire.length))
          skips.push({ cron_id: row.cron_id, scheduled_for: f.scheduled_for, reason: 'overlap' });
        const cron = firingCron(row, row.graph_id);
        for (const f of fire) firings.push({ cron, scheduled_for: f.scheduled_for, skipped_count: f.skipped_count, trigger: 'schedule' });
      } else logger.error(`scheduler could not plan this cron: ${error}`, { cron_id: row.cron_id });
      advance.ids.push(row.cron_id);
      advance.next.push(next);
      advance.finished.push(next === null);
      advance.error.push(error === null ? null : `scheduler could not plan this cron: ${error}`);
      advance.firedThrough.push(firedThrough);
    }
    const written = await fireOccurrences(client, boss, firings, skips);
    const superseded = await runsToSupersede(client, written);
    await client.query(prepared(client, ADVANCE, [advance.ids, advance.next, advance.finished, advance.firedThrough]));
    const stopped = advance.ids
      .flatMap((id, i) => {
        const error = advance.error[i];
        return error === null ? [] : [{ id, error }];
      })
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (stopped.length) await client.query(STOPPED_ERROR, [stopped.map((s) => s.id), stopped.map((s) => s.error)]);
    if (skips.length) logger.info('occurrences skipped', { count: skips.length, reasons: countBy(skips.map((sk) => sk.reason)) });
    return {
      claimed: rows.length,
      fired: written.length,
      skipped: skips.length,
      superseded,
      // Fire lag: enqueue time (this transaction's clock) minus scheduled_for; counted after commit.
      // An occurrence fired ahead of its instant was not late: 0.
      lags: written.map((r) => Math.max(0, rows[0].now.getTime() - r.scheduled_for!.getTime()) / 1000),
      skipReasons: skips.map((sk) => sk.reason),
    };
  }
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
