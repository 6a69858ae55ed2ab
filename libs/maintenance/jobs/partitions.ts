import type { Pool, PoolClient } from '../../db/index.ts';
import { PgErrorCode, pgErrorCode, withTransaction } from '../../db/index.ts';
import type { MaintenanceJob } from '../types.ts';

// 8. The occurrence ledger's partitions (migrations 019-020: cron_occurrences partitioned by
// RANGE (scheduled_for), one partition per UTC day, a DEFAULT partition, and the table as it was
// before the switch attached as cron_occurrences_legacy below the cutover). Hourly: daily
// partitions a week ahead, so an occurrence always has its partition long before it is due (and
// the DEFAULT partition takes it if this job stopped for a week: never an insert refused). On a
// database the release could not switch (processes older than migration 019 were running), the
// same steps as migration 020 run here until the switch is made.
//
// Each step is a transaction of its own with a short lock_timeout: a table it cannot lock within
// a second is left for the next hour (the step says so in the job's result), nobody queues behind it.

/** Daily partitions kept ahead of today. */
export const PARTITION_DAYS_AHEAD = 7;
/** Processes whose code predates this migration settle ledger rows by ctid alone: the switch waits for them. */
export const PARTITION_MIN_SCHEMA = 19;
const LOCK_TIMEOUT = '1s';

/** A step in a transaction of its own: its answer, or 'busy' when a lock was not free. */
async function step(pool: Pool, sql: string, params: unknown[] = []): Promise<string> {
  try {
    return await withTransaction(pool, async (client: PoolClient) => {
      // VALIDATE and the moves out of the DEFAULT partition read whole tables: no statement timeout.
      await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'; SET LOCAL statement_timeout = 0`);
      const { rows } = await client.query<{ answer: unknown }>(sql, params);
      return String(rows[0]?.answer);
    });
  } catch (err) {
    if (pgErrorCode(err) === PgErrorCode.lockNotAvailable) return 'busy: a lock was not free within 1s, next pass';
    throw err;
  }
}

/** The switch's steps (as migration 020) and the partitions ahead: what each answered. */
export async function maintainLedgerPartitions(pool: Pool, daysAhead = PARTITION_DAYS_AHEAD): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (!(await isPartitioned(pool))) {
    out.prepare = await step(pool, `SELECT agentcron_ledger_prepare() AS answer`);
    out.validate = await step(pool, `SELECT agentcron_ledger_validate() AS answer`);
    out.partition = await step(pool, `SELECT agentcron_ledger_partition($1, $2) AS answer`, [PARTITION_MIN_SCHEMA, daysAhead]);
  }
  out.created = await step(pool, `SELECT agentcron_ledger_partitions_ahead($1) AS answer`, [daysAhead]);
  return out;
}

export async function isPartitioned(pool: Pool): Promise<boolean> {
  const { rows } = await pool.query<{ p: boolean }>(`SELECT relkind = 'p' AS p FROM pg_class WHERE oid = 'cron_occurrences'::regclass`);
  return rows[0]?.p === true;
}

export interface LedgerPartition {
  name: string;
  /** Upper bound of its range; null for the DEFAULT partition. */
  upper: Date | null;
  kind: 'day' | 'legacy' | 'default';
}

/** The ledger's partitions (none when it is not partitioned), oldest first. */
export async function ledgerPartitions(pool: Pool): Promise<LedgerPartition[]> {
  const { rows } = await pool.query<{ name: string; upper: Date | null; is_default: boolean }>(
    `SELECT c.relname AS name,
            substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz AS upper,
            pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'cron_occurrences'::regclass AND c.relkind = 'r'
      ORDER BY upper NULLS LAST, c.relname`,
  );
  return rows.map((r) => ({
    name: r.name,
    upper: r.upper,
    kind: r.is_default ? 'default' : r.name === 'cron_occurrences_legacy' ? 'legacy' : 'day',
  }));
}

export const ledgerPartitionsJob: MaintenanceJob = {
  name: 'ledger_partitions',
  async run({ pool }) {
    const steps = await maintainLedgerPartitions(pool);
    const parts = await ledgerPartitions(pool);
    return { ...steps, partitions: parts.length, newest: parts.filter((p) => p.kind === 'day').at(-1)?.name ?? null };
  },
};
