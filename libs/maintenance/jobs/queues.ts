import { QUEUES } from '../../queue/index.ts';
import type { MaintenanceJob } from '../types.ts';
import { deleteInBatches } from './batches.ts';

// 7. Queue hygiene. pg-boss deletes finished jobs itself, per queue policy, on the processes
// that supervise; this keeps agentcron's queues within QUEUE_RETENTION_DAYS whatever the
// policies stored with the queues say and whether or not a supervisor is running. Only
// finished jobs (completed, failed, cancelled) of agentcron's own queues are touched: a job
// waiting or running is never deleted, nor another application's jobs in the same schema.

const PURGE = (schema: string) => `
  DELETE FROM ${schema}.job WHERE (name, id) IN (
    SELECT name, id FROM ${schema}.job
     WHERE name = ANY($1::text[])
       AND state IN ('completed', 'failed', 'cancelled')
       AND completed_on < now() - make_interval(days => $2)
     LIMIT $3)`;

const SIZES = (schema: string) => `
  SELECT name, state::text AS state, count(*)::int AS jobs FROM ${schema}.job WHERE name = ANY($1::text[]) GROUP BY name, state ORDER BY name, state`;

export const queueHygiene: MaintenanceJob = {
  name: 'queue_hygiene',
  async run({ pool, settings, signal }) {
    const queues = Object.values(QUEUES);
    const deleted = await deleteInBatches(pool, PURGE(settings.pgbossSchema), [queues, settings.queueRetentionDays], signal);
    const { rows } = await pool.query<{ name: string; state: string; jobs: number }>(SIZES(settings.pgbossSchema), [queues]);
    const remaining: Record<string, Record<string, number>> = {};
    for (const r of rows) (remaining[r.name] ??= {})[r.state] = r.jobs;
    return { retention_days: settings.queueRetentionDays, jobs_deleted: deleted, remaining };
  },
};
