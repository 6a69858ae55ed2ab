import type { MaintenanceJob } from '../types.ts';
import { deleteInBatches } from './batches.ts';

// 1. Run and occurrence-ledger retention. Ended runs older than RUN_RETENTION_DAYS go; runs still
// pending or running stay however old (the stale run reaper decides about those). Ledger rows go
// once settled and past retention; rows of a cron that no longer exists go past retention
// whatever their status, since nothing will ever settle them.

const PURGE_RUNS = `
  DELETE FROM runs WHERE run_id IN (
    SELECT run_id FROM runs
     WHERE ended_at < now() - make_interval(days => $1)
       AND status NOT IN ('pending', 'running')
     LIMIT $2)`;

const PURGE_LEDGER = `
  DELETE FROM cron_occurrences WHERE (cron_id, scheduled_for) IN (
    SELECT o.cron_id, o.scheduled_for FROM cron_occurrences o
     WHERE o.created_at < now() - make_interval(days => $1)
       AND ((o.status NOT IN ('enqueued', 'running') AND coalesce(o.ended_at, o.created_at) < now() - make_interval(days => $1))
            OR NOT EXISTS (SELECT 1 FROM crons c WHERE c.cron_id = o.cron_id))
     LIMIT $2)`;

export const retentionPurge: MaintenanceJob = {
  name: 'retention_purge',
  async run({ pool, settings, signal }) {
    const days = settings.runRetentionDays;
    if (days === 0) return { retention_days: 0, note: 'RUN_RETENTION_DAYS=0 keeps runs and the ledger forever' };
    const runs = await deleteInBatches(pool, PURGE_RUNS, [days], signal);
    const ledger = await deleteInBatches(pool, PURGE_LEDGER, [days], signal);
    return { retention_days: days, runs_deleted: runs, ledger_rows_deleted: ledger };
  },
};
