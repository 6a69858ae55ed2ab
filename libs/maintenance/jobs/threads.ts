import type { MaintenanceJob } from '../types.ts';
import { deleteInBatches } from './batches.ts';

// 2. Ephemeral thread sweep and 6. thread TTL. A thread is only deleted while nothing runs on it;
// rows are locked SKIP LOCKED so a thread a run is being created on (which locks it) is left for
// the next pass. Deleting a thread deletes its runs (foreign key); the ledger keeps the record.

// An ephemeral thread outlives its run only when the worker died between ending the run and
// deleting the thread, or the run was removed; after the grace period nobody will come back for it.
const SWEEP_EPHEMERAL = `
  DELETE FROM threads WHERE thread_id IN (
    SELECT t.thread_id FROM threads t
     WHERE t.ephemeral
       AND t.updated_at < now() - make_interval(mins => $1)
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
     LIMIT $2
       FOR UPDATE SKIP LOCKED)`;

// Idle: not updated, and no run created or changed, within the TTL; never a thread a cron is
// bound to (deleting it would delete the cron).
const EXPIRE_IDLE = `
  DELETE FROM threads WHERE thread_id IN (
    SELECT t.thread_id FROM threads t
     WHERE t.updated_at < now() - make_interval(days => $1)
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id
                        AND (r.status IN ('pending', 'running') OR r.updated_at >= now() - make_interval(days => $1)))
       AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = t.thread_id)
     LIMIT $2
       FOR UPDATE OF t SKIP LOCKED)`;

export const ephemeralThreadSweep: MaintenanceJob = {
  name: 'ephemeral_thread_sweep',
  async run({ pool, settings, signal }) {
    const deleted = await deleteInBatches(pool, SWEEP_EPHEMERAL, [settings.ephemeralGraceMinutes], signal);
    return { grace_minutes: settings.ephemeralGraceMinutes, threads_deleted: deleted };
  },
};

export const threadTtl: MaintenanceJob = {
  name: 'thread_ttl',
  async run({ pool, settings, signal }) {
    const days = settings.threadTtlDays;
    if (days === 0) return { ttl_days: 0, note: 'THREAD_TTL_DAYS is not set: threads are kept' };
    const deleted = await deleteInBatches(pool, EXPIRE_IDLE, [days], signal);
    return { ttl_days: days, threads_deleted: deleted };
  },
};
