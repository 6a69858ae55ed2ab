import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { neededSchemaVersion } from '../db/index.ts';
import type { Pool, Queryable } from '../db/index.ts';
import type { Logger } from '../log/index.ts';

export type ProcessRole = 'api' | 'scheduler' | 'worker';

/**
 * A row in agentcron_processes kept fresh every interval, so /health (and other processes)
 * can tell how many schedulers and workers are alive and when the scheduler last ticked.
 */
export class Heartbeat {
  readonly processId = randomUUID();
  readonly role: ProcessRole;
  #pool: Pool;
  #intervalMs: number;
  #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #tickedSince = false;

  constructor(pool: Pool, role: ProcessRole, intervalSeconds: number, logger: Logger) {
    this.#pool = pool;
    this.role = role;
    this.#intervalMs = intervalSeconds * 1000;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    // schema_version: the migrations this code needs. A change old code cannot live with waits for
    // every process older than it to be gone (the ledger's partitioning, migrations/019).
    await this.#pool.query(`INSERT INTO agentcron_processes (process_id, role, hostname, pid, schema_version) VALUES ($1, $2, $3, $4, $5)`, [
      this.processId,
      this.role,
      os.hostname(),
      process.pid,
      neededSchemaVersion(),
    ]);
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Scheduler: a pass over due crons finished; recorded with the next beat (no extra query per tick). */
  ticked(): void {
    this.#tickedSince = true;
  }

  async beat(): Promise<void> {
    const ticked = this.#tickedSince;
    this.#tickedSince = false;
    try {
      await this.#pool.query(
        `UPDATE agentcron_processes
            SET last_seen_at = now(), last_tick_at = CASE WHEN $2 THEN now() ELSE last_tick_at END
          WHERE process_id = $1`,
        [this.processId, ticked],
      );
    } catch (err) {
      this.#logger.warn('heartbeat failed', { err: String(err) });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    // Rows of stopped processes are kept briefly for the record, then pruned by whoever starts next.
    await this.#pool.query(`UPDATE agentcron_processes SET stopped_at = now() WHERE process_id = $1`, [this.processId]).catch(() => {});
    await this.#pool.query(`DELETE FROM agentcron_processes WHERE coalesce(stopped_at, last_seen_at) < now() - interval '1 day'`).catch(() => {});
  }
}

export interface ProcessCounts {
  schedulers_alive: number;
  workers_alive: number;
  apis_alive: number;
  scheduler_last_tick_at: Date | null;
}

/** Processes seen within three heartbeat intervals and not stopped. */
export async function liveProcesses(pool: Pool, heartbeatSeconds: number): Promise<ProcessCounts> {
  const { rows } = await pool.query<{ role: ProcessRole; alive: number; last_tick_at: Date | null }>(
    `SELECT role,
            count(*) FILTER (WHERE stopped_at IS NULL AND last_seen_at > now() - make_interval(secs => $1))::int AS alive,
            max(last_tick_at) AS last_tick_at
       FROM agentcron_processes
      GROUP BY role`,
    [heartbeatSeconds * 3],
  );
  const by = new Map(rows.map((r) => [r.role, r]));
  return {
    schedulers_alive: by.get('scheduler')?.alive ?? 0,
    workers_alive: by.get('worker')?.alive ?? 0,
    apis_alive: by.get('api')?.alive ?? 0,
    scheduler_last_tick_at: by.get('scheduler')?.last_tick_at ?? null,
  };
}

// Whether schedulers tick. A scheduler's tick is recorded with its next heartbeat, so "ticked
// within three poll intervals" allows one heartbeat interval more; one that just started counts
// as ticking until then. Before any scheduler has registered in this database (an api started
// alone, a fresh deployment) there is nothing to judge: `ticking` is null and /health stays 200.
const SCHEDULER_TICKS = `
  SELECT count(*)::int AS registered,
         coalesce(bool_or(last_tick_at > now() - make_interval(secs => $1)
                          OR (stopped_at IS NULL AND started_at > now() - make_interval(secs => $1))), false) AS ticking
    FROM agentcron_processes WHERE role = 'scheduler'`;

/** Schedulers registered in this database, and whether any ticked within `staleAfterSeconds` (see above). */
export async function schedulerTicks(db: Queryable, staleAfterSeconds: number): Promise<{ registered: number; ticking: boolean }> {
  const { rows } = await db.query<{ registered: number; ticking: boolean }>(SCHEDULER_TICKS, [staleAfterSeconds]);
  return rows[0];
}

/**
 * The start of the unbroken stretch of time, reaching `until`, during which some scheduler
 * process that fires crons (it has passed at least once: last_tick_at) was alive, from their
 * rows: each alive from its start to its stop, or, not stopped, to its last heartbeat plus
 * `slackSeconds`; `until` itself when none reaches it. A scheduler that takes over from another
 * (a rolling deploy) thereby knows what fell due while the other ran: late, not missed
 * (PlanLimits.coveredFrom). A scheduler that died without stopping counts until its slack ends.
 */
export async function schedulersRunningSince(pool: Pool, until: Date, slackSeconds: number): Promise<Date> {
  const { rows } = await pool.query<{ started_at: Date; ended_at: Date }>(
    `SELECT started_at, coalesce(stopped_at, last_seen_at + make_interval(secs => $2)) AS ended_at
       FROM agentcron_processes
      WHERE role = 'scheduler' AND last_tick_at IS NOT NULL AND started_at < $1`,
    [until, slackSeconds],
  );
  let from = until.getTime();
  for (let moved = true; moved;) {
    moved = false;
    for (const r of rows) {
      if (r.started_at.getTime() < from && r.ended_at.getTime() >= from) {
        from = r.started_at.getTime();
        moved = true;
      }
    }
  }
  return new Date(from);
}
