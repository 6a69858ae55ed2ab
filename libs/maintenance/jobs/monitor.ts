import { saturation } from '../../metrics/index.ts';
import type { Saturation } from '../../metrics/index.ts';
import { QUEUES, deadLetterCountsSql } from '../../queue/index.ts';
import type { MaintenanceContext, MaintenanceJob } from '../types.ts';

// 5. Heartbeat monitor: what an operator should look at, logged as warnings and stored as the
// job's last_result, which /health shows. Looks at the ledger rows written since its previous
// check (at most the last hour) for lagging crons (a check reads about a minute of the ledger
// however busy the deployment is: the whole last hour was 360,000 rows a minute at 100 runs/s),
// at crons due longer than the threshold and still not fired (no scheduler keeps up),
// at schedulers and workers that stopped heartbeating without stopping, and at run and webhook
// jobs that reached a dead-letter queue (lost on every attempt), and at saturation: lag to start
// (runs started late: no free worker, a limit) and a backlog that grew for 5 minutes, judged as
// /health judges them (libs/metrics/saturation.ts). Lag to enqueue says a scheduler is behind;
// lag to start says the workers are.

/** How far back the monitor looks for lagging occurrences (at most) and dead letters. */
const WINDOW = '1 hour';

/**
 * Where this check's look at the ledger starts: the previous check, less a little overlap (a row
 * committed late by a long pass), never more than WINDOW back.
 */
const SINCE = `
  SELECT greatest(now() - interval '${WINDOW}',
                  coalesce((SELECT (last_result->>'checked_at')::timestamptz FROM maintenance_jobs WHERE job_name = 'heartbeat_monitor'),
                           now() - interval '${WINDOW}') - interval '30 seconds') AS since`;

export interface MonitorFindings {
  checked_at: string;
  /** The ledger rows looked at for lagging crons: those written since this instant (the previous check). */
  lagging_since: string;
  fire_lag_threshold_seconds: number;
  lagging_crons: { cron_id: string; occurrences: number; max_lag_seconds: number }[];
  overdue_crons: { count: number; oldest_next_run_date: string | null };
  lost_processes: { process_id: string; role: string; hostname: string; pid: number; last_seen_at: string }[];
  alive: { schedulers: number; workers: number };
  dead_letters: { queue: string; last_hour: number; waiting: number }[];
  /** Deployment-wide saturation figures (null when they could not be read). */
  saturation: Pick<Saturation, 'queue_latency_seconds' | 'waiting' | 'start_lag' | 'backlog' | 'status'> | null;
  warnings: string[];
}

const LAGGING = `
  SELECT cron_id, count(*)::int AS occurrences, extract(epoch FROM max(enqueued_at - scheduled_for))::float8 AS max_lag_seconds
    FROM cron_occurrences
   WHERE created_at > $2 AND trigger = 'schedule' AND enqueued_at IS NOT NULL
     AND enqueued_at - scheduled_for > make_interval(secs => $1)
   GROUP BY cron_id
   ORDER BY max(enqueued_at - scheduled_for) DESC
   LIMIT 50`;

const OVERDUE = `
  SELECT count(*)::int AS count, min(next_run_date) AS oldest
    FROM crons WHERE enabled AND next_run_date < now() - make_interval(secs => $1)`;

const PROCESSES = `
  SELECT process_id, role, hostname, pid, last_seen_at,
         (last_seen_at > now() - make_interval(secs => $1)) AS alive
    FROM agentcron_processes
   WHERE stopped_at IS NULL AND role IN ('scheduler', 'worker')`;

export async function checkHeartbeats({ pool, settings }: Pick<MaintenanceContext, 'pool' | 'settings'>): Promise<MonitorFindings> {
  const threshold = settings.fireLagWarnSeconds;
  const deadQueues = Object.values(QUEUES).filter((q) => q.endsWith('.dead'));
  const since = (await pool.query<{ since: Date }>(SINCE)).rows[0].since;
  const [lagging, overdue, processes, dead, now, sat] = await Promise.all([
    pool.query<{ cron_id: string; occurrences: number; max_lag_seconds: number }>(LAGGING, [threshold, since]),
    pool.query<{ count: number; oldest: Date | null }>(OVERDUE, [threshold]),
    pool.query<{ process_id: string; role: string; hostname: string; pid: number; last_seen_at: Date; alive: boolean }>(PROCESSES, [
      settings.heartbeatSeconds * 3,
    ]),
    pool.query<{ queue: string; last_hour: number; waiting: number }>(deadLetterCountsSql(settings.pgbossSchema, WINDOW), [deadQueues]),
    pool.query<{ now: Date }>(`SELECT now()`),
    saturation(pool, {
      pgbossSchema: settings.pgbossSchema,
      maxStartLagSeconds: settings.maxStartLagSeconds,
      windowSeconds: settings.startLagWindowSeconds,
    }).catch((err: unknown) => new Error(err instanceof Error ? err.message : String(err))),
  ]);
  const lost = processes.rows.filter((p) => !p.alive);
  const alive = {
    schedulers: processes.rows.filter((p) => p.alive && p.role === 'scheduler').length,
    workers: processes.rows.filter((p) => p.alive && p.role === 'worker').length,
  };
  const warnings: string[] = [];
  for (const c of lagging.rows) {
    warnings.push(
      `cron ${c.cron_id}: ${c.occurrences} occurrence(s) since ${since.toISOString()} enqueued up to ${c.max_lag_seconds.toFixed(1)}s late ` +
        `(threshold ${threshold}s)`,
    );
  }
  const o = overdue.rows[0];
  if (o.count > 0)
    warnings.push(`${o.count} enabled cron(s) due more than ${threshold}s ago and not fired (oldest due ${o.oldest!.toISOString()}): is a scheduler running?`);
  for (const p of lost) warnings.push(`${p.role} ${p.hostname}:${p.pid} (${p.process_id}) last seen ${p.last_seen_at.toISOString()} and never stopped`);
  if (alive.schedulers === 0) warnings.push('no scheduler is alive: crons and maintenance jobs do not fire');
  for (const d of dead.rows)
    if (d.last_hour > 0) warnings.push(`${d.last_hour} job(s) reached ${d.queue} in the last hour (their workers were lost on every attempt)`);
  if (sat instanceof Error) warnings.push(`saturation figures could not be read: ${sat.message}`);
  else for (const reason of sat.reasons) warnings.push(`${reason}: workers are behind (more workers or WORKER_CONCURRENCY, or a limit too tight)`);
  return {
    checked_at: now.rows[0].now.toISOString(),
    lagging_since: since.toISOString(),
    fire_lag_threshold_seconds: threshold,
    lagging_crons: lagging.rows,
    overdue_crons: { count: o.count, oldest_next_run_date: o.oldest ? o.oldest.toISOString() : null },
    lost_processes: lost.map((p) => ({ process_id: p.process_id, role: p.role, hostname: p.hostname, pid: p.pid, last_seen_at: p.last_seen_at.toISOString() })),
    alive,
    dead_letters: dead.rows,
    saturation:
      sat instanceof Error
        ? null
        : { status: sat.status, queue_latency_seconds: sat.queue_latency_seconds, waiting: sat.waiting, start_lag: sat.start_lag, backlog: sat.backlog },
    warnings,
  };
}

export const heartbeatMonitor: MaintenanceJob = {
  name: 'heartbeat_monitor',
  async run(ctx) {
    const findings = await checkHeartbeats(ctx);
    for (const w of findings.warnings) ctx.logger.warn(`heartbeat monitor: ${w}`);
    return { ...findings };
  },
};
