import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Queue } from 'pg-boss';
import { PgErrorCode, guardClient, pgErrorCode } from '../db/index.ts';
import type { Queryable } from '../db/index.ts';

/**
 * The version of the queue policy this code writes (queueDefinitions). Raise it with every change
 * to queueDefinitions: a process whose version is older than the one that last wrote a queue's
 * policy leaves that policy alone (test/upgrades.test.ts pins the definitions to this number).
 */
export const QUEUE_POLICY_VERSION = 1;

export interface PolicyGuard {
  /** The queues may be written: this process's version is not older than any stored one. */
  allowed: boolean;
  /** The newest stored version, when newer than this process's. */
  newer?: number;
  /** Records this version as the writer's and releases the lock (after the queues were written). */
  commit(): Promise<void>;
  /** Releases the lock without recording anything. */
  abandon(): Promise<void>;
}

/**
 * Locks the policy rows of `queues` (in name order) on a connection of its own, inside a
 * transaction, and says whether `version` may write them. Two writers at once take turns: the
 * second sees what the first recorded. A database without agentcron_queue_policy (before
 * migration 014) allows the write and records nothing.
 */
export async function guardPolicyWrite(connectionString: string, queues: string[], version: number = QUEUE_POLICY_VERSION): Promise<PolicyGuard> {
  const client = new pg.Client({ connectionString, application_name: 'agentcron-queue-policy' });
  guardClient(client);
  await client.connect();
  const close = async (sql: string) => {
    await client.query(sql).catch(() => {});
    await client.end().catch(() => {});
  };
  const names = [...queues].sort();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0');
    await client.query(`INSERT INTO agentcron_queue_policy (queue, version) SELECT unnest($1::text[]), 0 ORDER BY 1 ON CONFLICT (queue) DO NOTHING`, [names]);
    const { rows } = await client.query<{ version: number }>(
      `SELECT version FROM agentcron_queue_policy WHERE queue = ANY($1::text[]) ORDER BY queue FOR UPDATE`,
      [names],
    );
    const newest = rows.reduce((max, r) => Math.max(max, r.version), 0);
    if (newest > version) return { allowed: false, newer: newest, commit: () => close('ROLLBACK'), abandon: () => close('ROLLBACK') };
    return {
      allowed: true,
      async commit() {
        await client.query(`UPDATE agentcron_queue_policy SET version = $2, written_at = now() WHERE queue = ANY($1::text[])`, [names, version]);
        await close('COMMIT');
      },
      abandon: () => close('ROLLBACK'),
    };
  } catch (err) {
    await close('ROLLBACK');
    if (pgErrorCode(err) === PgErrorCode.undefinedTable) return { allowed: true, commit: async () => {}, abandon: async () => {} };
    throw err;
  }
}

/** Queue settings whose stored value matters to a running process (heartbeat: how often a worker must touch its jobs). */
const WATCHED = ['heartbeatSeconds', 'retryDelayMax'] as const;

/**
 * The watched settings of this process's definitions that differ from the stored queues, as one
 * line (empty when none differ). A worker whose heartbeat interval is longer than the stored
 * one's would see its runs' jobs expire while they execute.
 */
export function storedPolicyDifferences(defined: Queue[], stored: (Partial<Queue> & { name: string })[]): string {
  const byName = new Map(stored.map((q) => [q.name, q]));
  const diffs: string[] = [];
  for (const q of defined) {
    const s = byName.get(q.name);
    if (!s) continue;
    for (const key of WATCHED) {
      const want = q[key];
      if (want === undefined) continue;
      const have = s[key] ?? null;
      if (have !== want) diffs.push(`${q.name} ${key} ${want} (stored ${have})`);
    }
  }
  return diffs.join(', ');
}

/** The pg-boss schema version the installed pg-boss needs (its package.json's pgboss.schema). */
export function neededQueueSchemaVersion(): number {
  const pkg = new URL('../package.json', import.meta.resolve('pg-boss'));
  return Number((JSON.parse(readFileSync(fileURLToPath(pkg), 'utf8')) as { pgboss: { schema: number } }).pgboss.schema);
}

/** The pg-boss schema version installed in `schema` (null: not installed). */
export async function foundQueueSchemaVersion(db: Queryable, schema: string): Promise<number | null> {
  const { rows } = await db.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [`${schema}.version`]);
  if (!rows[0]?.exists) return null;
  const v = await db.query<{ version: string }>(`SELECT version FROM "${schema.replaceAll('"', '""')}".version`);
  return v.rows.length ? Number(v.rows[0].version) : null;
}
