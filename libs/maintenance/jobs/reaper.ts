import { runJobMayStillRunSql } from '../../queue/index.ts';
import { endRuns } from '../../runs/index.ts';
import type { MaintenanceJob } from '../types.ts';

// 3. Stale run reaper. A run is stale when it has been pending or running far longer than any
// run may take (MAINTENANCE_STALE_RUN_FACTOR × the longest run timeout) AND nothing holds it:
// its pg-boss job is gone or finished (so no worker will ever pick it up again), or its job is
// active but neither refreshed by its worker's heartbeat nor on a worker that is still alive.
// A run whose job waits in the queue (a backlog, a retry) is not stale, however old: it will run.
// Ended through endRuns, the worker's own finishing path: the ledger row and the cron's
// last_run_error say why.

const WORKER_ALIVE = `EXISTS (SELECT 1 FROM agentcron_processes p
                               WHERE p.role = 'worker' AND p.stopped_at IS NULL
                                 AND p.last_seen_at > now() - make_interval(secs => $3))`;

const STALE = (schema: string) => `
  SELECT r.run_id
    FROM runs r
   WHERE r.status IN ('pending', 'running')
     AND coalesce(r.started_at, r.created_at) < now() - make_interval(secs => $1)
     AND NOT ${runJobMayStillRunSql(schema, 'r.run_id', '$2', WORKER_ALIVE)}
   ORDER BY r.updated_at
   LIMIT $4`;

const LIMIT = 1000;

export const staleRunReaper: MaintenanceJob = {
  name: 'stale_run_reaper',
  async run({ pool, boss, settings, logger, signal }) {
    const ended: string[] = [];
    for (;;) {
      const { rows } = await pool.query<{ run_id: string }>(STALE(settings.pgbossSchema), [
        settings.staleRunSeconds,
        settings.workerHeartbeatSeconds * 3,
        settings.heartbeatSeconds * 3,
        LIMIT,
      ]);
      if (rows.length === 0) break;
      const done = await endRuns(
        pool,
        boss,
        rows.map((r) => r.run_id),
        {
          status: 'error',
          error: {
            error: 'StaleRun',
            message: `the run was pending or running for more than ${settings.staleRunSeconds}s and no live worker held it; ended by the stale run reaper`,
          },
        },
      );
      ended.push(...done);
      if (rows.length < LIMIT || signal.aborted) break;
    }
    if (ended.length) logger.warn('stale runs ended', { runs: ended.slice(0, 50), count: ended.length });
    return { threshold_seconds: settings.staleRunSeconds, runs_ended: ended.length, run_ids: ended.slice(0, 50) };
  },
};
