import { jobCountsSql, purgeFinishedJobsSql, QUEUES } from '../../queue/index.ts';
import type { MaintenanceJob } from '../types.ts';
import { deleteInBatches } from './batches.ts';

// 7. Queue hygiene. pg-boss deletes finished jobs itself, per queue policy, on the processes
// that supervise; this keeps agentcron's queues within QUEUE_RETENTION_DAYS whatever the
// policies stored with the queues say and whether or not a supervisor is running. Only
// finished jobs (completed, failed, cancelled) of agentcron's own queues are touched: a job
// waiting or running is never deleted, nor another application's jobs in the same schema.

export const queueHygiene: MaintenanceJob = {
  name: 'queue_hygiene',
  async run({ pool, settings, signal }) {
    const queues = Object.values(QUEUES);
    const deleted = await deleteInBatches(pool, purgeFinishedJobsSql(settings.pgbossSchema), [queues, settings.queueRetentionDays], signal);
    const { rows } = await pool.query<{ name: string; state: string; jobs: number }>(jobCountsSql(settings.pgbossSchema), [queues]);
    const remaining: Record<string, Record<string, number>> = {};
    for (const r of rows) (remaining[r.name] ??= {})[r.state] = r.jobs;
    return { retention_days: settings.queueRetentionDays, jobs_deleted: deleted, remaining };
  },
};
