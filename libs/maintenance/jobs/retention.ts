import type { Pool } from '../../db/index.ts';
import { PgErrorCode, pgErrorCode, withTransaction } from '../../db/index.ts';
import type { MaintenanceJob } from '../types.ts';
import { deleteInBatches } from './batches.ts';
import { isPartitioned, ledgerPartitions } from './partitions.ts';

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

// The ledger is partitioned by scheduled_for (migrations 019-020, one partition per UTC day): a
// day's partition wholly past the horizon is dropped whole (no multi-million-row DELETE) unless
// it still holds a row the rule above keeps (open, created or ended within the horizon: a
// backfill, a retry of an old occurrence), then its other rows go row by row like those of the
// legacy partition (the table before the switch, below the cutover) and the DEFAULT partition.
// `table` is the ledger itself before the switch, else one partition.
const purgeLedgerSql = (table: string) => `
  DELETE FROM "${table}" WHERE (cron_id, scheduled_for) IN (
    SELECT o.cron_id, o.scheduled_for FROM "${table}" o
     WHERE o.created_at < now() - make_interval(days => $1)
       AND ((o.status NOT IN ('enqueued', 'running') AND coalesce(o.ended_at, o.created_at) < now() - make_interval(days => $1))
            OR NOT EXISTS (SELECT 1 FROM crons c WHERE c.cron_id = o.cron_id))
     LIMIT $2)`;

// A row of a partition past the horizon that PURGE would keep. One read of the partition (no lock
// beyond a reader's), only once it is wholly past the horizon, right before it is dropped.
const holdsKeepers = (table: string) => `
  SELECT EXISTS (
    SELECT 1 FROM "${table}" o
     WHERE o.created_at >= now() - make_interval(days => $1)
        OR ((o.status IN ('enqueued', 'running') OR coalesce(o.ended_at, o.created_at) >= now() - make_interval(days => $1))
            AND EXISTS (SELECT 1 FROM crons c WHERE c.cron_id = o.cron_id))) AS keep`;

interface LedgerPurge {
  rows: number;
  dropped: string[];
  busy: string[];
}

/** The ledger's retention: partitions wholly past the horizon dropped, the rest row by row. */
export async function purgeLedger(pool: Pool, days: number, signal: AbortSignal): Promise<LedgerPurge> {
  const out: LedgerPurge = { rows: 0, dropped: [], busy: [] };
  if (!(await isPartitioned(pool))) {
    out.rows = await deleteInBatches(pool, purgeLedgerSql('cron_occurrences'), [days], signal);
    return out;
  }
  const { rows: clock } = await pool.query<{ horizon: Date }>(`SELECT now() - make_interval(days => $1) AS horizon`, [days]);
  const horizon = clock[0].horizon.getTime();
  const rowByRow: string[] = [];
  for (const p of await ledgerPartitions(pool)) {
    if (signal.aborted) break;
    const past = p.upper !== null && p.upper.getTime() <= horizon;
    const outcome = past && !(await keeps(pool, p.name, days)) ? await drop(pool, p.name, days) : 'kept';
    if (outcome === 'dropped') out.dropped.push(p.name);
    else if (outcome === 'busy') out.busy.push(p.name);
    else if (past || p.kind !== 'day') rowByRow.push(p.name);
  }
  for (const table of rowByRow) out.rows += await deleteInBatches(pool, purgeLedgerSql(table), [days], signal);
  return out;
}

async function keeps(pool: Pool, table: string, days: number): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    await client.query(`SET LOCAL statement_timeout = 0`);
    const { rows } = await client.query<{ keep: boolean }>(holdsKeepers(table), [days]);
    return rows[0].keep;
  });
}

// Under the lock, before the drop: what may have come since the read above (a backfill's insert,
// a retry reopening an old occurrence), each an index probe, so the lock is held an instant.
const CAME_SINCE = (table: string) => `
  SELECT EXISTS (SELECT 1 FROM "${table}" WHERE created_at >= now() - make_interval(days => $1))
      OR EXISTS (SELECT 1 FROM "${table}" WHERE retried_at >= now() - make_interval(days => $1)) AS came`;

/**
 * DROP TABLE of a partition locks the ledger (ACCESS EXCLUSIVE, taken first as the drop would:
 * parent, then partition) for an instant, never waiting more than a second for it. Answers
 * 'dropped', 'busy' (the lock was not free) or 'kept' (a row came since the read).
 */
async function drop(pool: Pool, table: string, days: number): Promise<'dropped' | 'busy' | 'kept'> {
  try {
    return await withTransaction(pool, async (client) => {
      await client.query(`SET LOCAL lock_timeout = '1s'`);
      await client.query(`LOCK TABLE cron_occurrences IN ACCESS EXCLUSIVE MODE`);
      const { rows } = await client.query<{ came: boolean }>(CAME_SINCE(table), [days]);
      if (rows[0].came) return 'kept';
      await client.query(`DROP TABLE IF EXISTS "${table}"`);
      return 'dropped';
    });
  } catch (err) {
    if (pgErrorCode(err) === PgErrorCode.lockNotAvailable) return 'busy';
    throw err;
  }
}

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
    const ledger = await purgeLedger(pool, days, signal);
    const threads = await deleteInBatches(pool, PURGE_KEEP_CRON_THREADS, [days], signal);
    return {
      retention_days: days,
      runs_deleted: runs,
      ledger_rows_deleted: ledger.rows,
      ledger_partitions_dropped: ledger.dropped,
      ...(ledger.busy.length ? { ledger_partitions_busy: ledger.busy } : {}),
      keep_cron_threads_deleted: threads,
    };
  },
};
