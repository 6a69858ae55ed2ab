import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from './pool.ts';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

// One advisory lock key for every migrator: the second process waits, then finds nothing to do.
const MIGRATION_LOCK_KEY = 7_245_001;

export interface MigrationResult {
  applied: string[];
}

/**
 * Applies numbered migrations/NNN_name.sql files not yet recorded in agentcron_migrations, each
 * in its own transaction, in order. Safe when several processes call it at once: a session
 * advisory lock serialises them, and a repeat call is a no-op.
 */
export async function migrate(pool: Pool, dir: string = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = (await readdir(dir)).filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  const applied: string[] = [];
  let broken: Error | undefined;
  try {
    // The pool's session limits are for the process's own queries: waiting for another migrator's
    // lock and a long migration are neither. RESET restores them before the client goes back.
    await client.query('SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS agentcron_migrations (
        id integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ id: number }>('SELECT id FROM agentcron_migrations');
      const done = new Set(rows.map((r) => r.id));
      for (const file of files) {
        const id = Number(file.slice(0, file.indexOf('_')));
        if (done.has(id)) continue;
        const sql = await readFile(path.join(dir, file), 'utf8');
        await client.query('BEGIN');
        try {
          // Recorded first: a migrator that somehow got past the lock collides on the key instead of re-applying.
          await client.query('INSERT INTO agentcron_migrations (id, name) VALUES ($1, $2)', [id, file]);
          await client.query(sql);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(file);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  } finally {
    // A client that cannot reset (its connection broke) is discarded, not handed to the next caller.
    await client.query('RESET statement_timeout; RESET lock_timeout; RESET idle_in_transaction_session_timeout').catch((err: Error) => {
      broken = err;
    });
    client.release(broken);
  }
  return { applied };
}
