import type { Pool, PoolClient, Queryable } from '../db/index.ts';
import { Listener, backoffDelay, describeDatabaseError, prepared, retryConflicts, withTransaction } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import { parseSchedule } from '../schedule/index.ts';
import type { Schedule } from '../schedule/index.ts';
import { Alarm } from '../timing/index.ts';
import { planOccurrences } from './plan.ts';
import type { MissedPolicy, OccurrencePlan, PlanLimits } from './plan.ts';

// The schedule-table engine: how crons and the built-in maintenance jobs fire, one code path for
// both. A schedule table has rows with schedule, timezone, enabled and next_run_date. A pass is
// one transaction: claim due rows (FOR UPDATE SKIP LOCKED, so any number of schedulers share the
// work and none waits for another), plan each row (planDue), write what fires (the table's own
// writer: ledger rows, runs, jobs), advance next_run_date, commit. A scheduler killed at any
// instant committed all of a batch or none of it. Between passes the loop sleeps until the
// earliest next_run_date (a second when the due rows are held by others), and wakes at once on a
// NOTIFY of a change; it passes only when that read says something is due.

/** What one pass (or all passes until nothing is due) did. */
export interface PassResult {
  claimed: number;
  fired: number;
  skipped: number;
}

/** A schedule table the loop fires. */
export interface ScheduleSource {
  /** Fires everything due: passes until a batch comes back short. */
  pass(): Promise<PassResult>;
  /** Milliseconds until its earliest occurrence (database clock; rows held by others count), or null. */
  msUntilNext(): Promise<number | null>;
}

/**
 * Runs `batch` in a transaction of its own, again and again until a batch claims fewer rows than
 * `batchSize`. A batch PostgreSQL aborted as a deadlock victim wrote nothing and is run again
 * whole, never lost. Answers the totals.
 */
export async function firePasses<T extends PassResult>(
  pool: Pool,
  batchSize: number,
  batch: (client: PoolClient) => Promise<T>,
  afterCommit?: (result: T) => Promise<void>,
): Promise<PassResult> {
  const total: PassResult = { claimed: 0, fired: 0, skipped: 0 };
  for (;;) {
    const r = await retryConflicts(() => withTransaction(pool, batch));
    await afterCommit?.(r);
    total.claimed += r.claimed;
    total.fired += r.fired;
    total.skipped += r.skipped;
    if (r.claimed < batchSize) return total;
  }
}

const SCHEDULE_TABLES = new Set(['crons', 'maintenance_jobs']);

/**
 * Milliseconds until the earliest next_run_date of `table`, per the database clock. A plain read:
 * a due row another transaction holds for a moment (another scheduler's pass, an API change of the
 * cron) still counts as due, and the loop looks again shortly after a pass that could claim
 * nothing (LOCKED_RETRY_MS). Skipping held rows here let a scheduler sleep past a due cron until
 * its poll interval whenever a finish held that cron at the instant it looked (before migration
 * 024 a finish locked its cron's row to write last_run_*).
 */
export async function msUntilDue(db: Queryable, table: 'crons' | 'maintenance_jobs'): Promise<number | null> {
  if (!SCHEDULE_TABLES.has(table)) throw new Error(`not a schedule table: ${table}`);
  const { rows } = await db.query<{ wait_ms: number }>(
    prepared(
      db,
      `SELECT (extract(epoch FROM (next_run_date - clock_timestamp())) * 1000)::float8 AS wait_ms
       FROM ${table} WHERE enabled AND next_run_date IS NOT NULL
      ORDER BY next_run_date
      LIMIT 1`,
      [],
    ),
  );
  return rows[0]?.wait_ms ?? null;
}

/** How soon the loop looks again when rows are due but a pass could claim none (others hold them). */
const LOCKED_RETRY_MS = 1000;

/** A due row of a schedule table, as planDue needs it. */
export interface DueSchedule {
  schedule: string;
  timezone: string | null;
  next_run_date: Date;
  end_time?: Date | null;
  missed_policy?: MissedPolicy;
  /** The database clock of the claim. */
  now: Date;
}

/** What a due row comes to: its plan, or why it could not be planned (it then stops, visibly). */
export interface DuePlan {
  plan: OccurrencePlan | null;
  /** The next occurrence (null: finished by end_time, or stopped by an error). */
  next: Date | null;
  /** The latest occurrence handled by this pass (fired or skipped): fired_through moves to it. */
  firedThrough: Date | null;
  error: string | null;
}

/**
 * Plans a due row: which occurrences fire, which are skipped and why, and the next one. A row
 * whose stored schedule no longer parses does not block its batch: it stops with the reason.
 */
export function planDue(row: DueSchedule, limits: PlanLimits, aheadUntil: Date | null = null): DuePlan {
  try {
    const schedule = parseSchedule(row.schedule, { timezone: row.timezone, allowSeconds: true });
    const plan: OccurrencePlan =
      row.next_run_date.getTime() <= row.now.getTime()
        ? planOccurrences(
            { schedule, nextRunDate: row.next_run_date, endTime: row.end_time ?? null, missedPolicy: row.missed_policy ?? 'latest' },
            row.now,
            limits,
          )
        : { fire: [], skipped: [], missedCount: 0, nextRunDate: row.next_run_date };
    if (aheadUntil) fireAhead(plan, schedule, aheadUntil, row.end_time ?? null);
    return { plan, next: plan.nextRunDate, firedThrough: latest([...plan.fire, ...plan.skipped].map((o) => o.scheduled_for)), error: null };
  } catch (err) {
    return { plan: null, next: null, firedThrough: null, error: (err as Error).message };
  }
}

/** Most occurrences of one row fired ahead by one pass (a seconds schedule and a long lookahead). */
const AHEAD_MAX = 100;

/**
 * Lookahead (CRON_LOOKAHEAD_MS, docs/scheduling.md): the occurrences after the plan's next one up
 * to `until` fire too, ahead of their instant (their runs start at it: the job's start_after),
 * each skipped_count 0; the next occurrence moves past them. Nothing is missed or skipped here:
 * what is ahead has not fallen due. A row with none (next_run_date after `until`) is unchanged.
 */
function fireAhead(plan: OccurrencePlan, schedule: Schedule, until: Date, endTime: Date | null): void {
  let next = plan.nextRunDate;
  for (let n = 0; next && next.getTime() <= until.getTime() && n < AHEAD_MAX; n++) {
    plan.fire.push({ scheduled_for: next, skipped_count: 0 });
    const following = schedule.nextAfter(next);
    next = endTime && following.getTime() > endTime.getTime() ? null : following;
  }
  plan.nextRunDate = next;
}

function latest(instants: Date[]): Date | null {
  let out: Date | null = null;
  for (const t of instants) if (!out || t.getTime() > out.getTime()) out = t;
  return out;
}

export interface FiringLoopOptions {
  pool: Pool;
  logger: Logger;
  /** Longest sleep between passes (CRON_POLL_INTERVAL_SECONDS). */
  pollIntervalSeconds: number;
  /** Fired in this order on every round. A failing first source backs the loop off; a failing later one is logged. */
  sources: ScheduleSource[];
  /** Connection string for the LISTEN connection that wakes the loop; null: none (behind a transaction pooler), poll every second. */
  listenUrl: string | null;
  /** Channels whose NOTIFY wakes the loop (a cron created, changed, enabled ...). */
  channels: string[];
  /** Told after every completed round (heartbeat's last_tick_at). */
  onTick?: () => void;
}

/** The scheduler's loop over its schedule tables: fire what is due, sleep until the next, wake on change. */
export class FiringLoop {
  #o: FiringLoopOptions;
  #running = false;
  #loop: Promise<void> | undefined;
  #alarm = new Alarm();
  #listener: Listener | undefined;

  constructor(options: FiringLoopOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    if (this.#o.listenUrl === null) {
      this.#loop = this.#run();
      return;
    }
    this.#listener = new Listener({
      connectionString: this.#o.listenUrl,
      channels: this.#o.channels,
      applicationName: 'agentcron-scheduler-listen',
      logger: this.#o.logger,
      onNotification: () => this.#alarm.wake(),
      // Changes made while the connection was down were not announced: look now.
      onReconnect: () => this.#alarm.wake(),
    });
    // Not awaited: polling covers a listener that cannot connect yet.
    void this.#listener.start();
    this.#loop = this.#run();
  }

  /** Stops after the pass in progress (its transaction commits or rolls back whole). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#alarm.wake();
    await this.#loop;
    await this.#listener?.stop();
  }

  async #run(): Promise<void> {
    const { logger, sources } = this.#o;
    // Without LISTEN a change (a new cron, a PATCH) is seen only by looking: every second.
    const pollIntervalSeconds = this.#o.listenUrl === null ? Math.min(1, this.#o.pollIntervalSeconds) : this.#o.pollIntervalSeconds;
    let failures = 0;
    while (this.#running) {
      this.#alarm.clear();
      let waitMs = pollIntervalSeconds * 1000;
      try {
        const started = performance.now();
        for (const [i, source] of sources.entries()) {
          let until: number | null;
          try {
            // One cheap indexed read first: a pass (a transaction of four statements) only when
            // something is due, so an idle scheduler sends a query or two per poll interval.
            until = await source.msUntilNext();
            if (until !== null && until <= 0) {
              const result = await source.pass();
              if (result.claimed) logger.debug('pass', { source: i, ...result });
              until = await source.msUntilNext();
              // Still due and nothing claimed: held by another transaction for now, not spun on.
              if (until !== null && until <= 0 && result.claimed === 0) until = LOCKED_RETRY_MS;
            }
          } catch (err) {
            if (i === 0) throw err;
            // A later source (the maintenance jobs) failing never stops the crons.
            logger.error(`scheduler pass over source ${i} failed (${describeDatabaseError(err)})`);
            continue;
          }
          if (until !== null) waitMs = Math.min(waitMs, Math.max(0, Math.ceil(until) + 1));
        }
        metrics.schedulerTick((performance.now() - started) / 1000);
        this.#o.onTick?.();
        failures = 0;
      } catch (err) {
        // Back off with jitter (at most 5 s, so firing resumes soon after the database is back); never let the loop die.
        waitMs = backoffDelay(failures++);
        logger.error(`scheduler pass failed (${describeDatabaseError(err)}); retrying in ${(waitMs / 1000).toFixed(1)}s`);
      }
      if (!this.#running) break;
      await this.#alarm.sleep(waitMs);
    }
  }
}
