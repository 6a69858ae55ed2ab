import type { MaintenanceJob } from '../types.ts';
import { deleteInBatches } from './batches.ts';

// 1. Run, occurrence-ledger and keep-cron thread retention. Ended runs older than RUN_RETENTION_DAYS go; runs still
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

// A stateless cron with on_run_completed = keep makes a thread per occurrence (metadata
// cron_id and scheduled_for, written by the scheduler) and keeps it after its run. Such a thread
// follows its runs: idle past retention (not updated, no run going or recent) it goes too, else
// one thread a run stayed for ever after its runs were purged. Threads a user made, and a cron's
// own thread (crons.thread_id), are left to THREAD_TTL_DAYS.
const PURGE_KEEP_CRON_THREADS = `
  DELETE FROM threads WHERE thread_id IN (
    SELECT t.thread_id FROM threads t
     WHERE NOT t.ephemeral
       AND t.metadata ? 'cron_id' AND t.metadata ? 'scheduled_for'
       AND t.updated_at < now() - make_interval(days => $1)
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id
                        AND (r.status IN ('pending', 'running') OR r.updated_at >= now() - make_interval(days => $1)))
       AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = t.thread_id)
     LIMIT $2
       FOR UPDATE OF t SKIP LOCKED)`;

export const retentionPurge: MaintenanceJob = {
  name: 'retention_purge',
  async run({ pool, settings, signal }) {
    const days = settings.runRetentionDays;
    if (days === 0) return { retention_days: 0, note: 'RUN_RETENTION_DAYS=0 keeps runs and the ledger forever' };
    const runs = await deleteInBatches(pool, PURGE_RUNS, [days], signal);
    const ledger = await deleteInBatches(pool, PURGE_LEDGER, [days], signal);
    const threads = await deleteInBatches(pool, PURGE_KEEP_CRON_THREADS, [days], signal);
    return { retention_days: days, runs_deleted: runs, ledger_rows_deleted: ledger, keep_cron_threads_deleted: threads };
  },
};
