import type { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import type { Pool } from '../db/index.ts';

// LangGraph graphs keep their state in PostgresSaver's tables, in a schema of their own
// (CHECKPOINT_SCHEMA) of the same database, keyed by the agentcron thread id. A thread's
// checkpoints live exactly as long as its row in `threads`: a trigger deletes them with it,
// whichever path deletes the thread (the API, the worker's ephemeral threads, a cascade, a sweep).

export const CLEANUP_TRIGGER = 'threads_delete_checkpoints';

/** Statements creating the function that deletes the checkpoints of the threads a DELETE removed. */
function cleanupFunctionSql(schema: string): string {
  // Only a validated lower-case identifier reaches here (CHECKPOINT_SCHEMA's rule).
  const s = `"${schema}"`;
  return `
    CREATE OR REPLACE FUNCTION ${s}.agentcron_delete_thread_checkpoints() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      DELETE FROM ${s}.checkpoint_writes c USING gone g WHERE c.thread_id = g.thread_id::text;
      DELETE FROM ${s}.checkpoint_blobs c USING gone g WHERE c.thread_id = g.thread_id::text;
      DELETE FROM ${s}.checkpoints c USING gone g WHERE c.thread_id = g.thread_id::text;
      RETURN NULL;
    END
    $fn$`;
}

// One statement-level trigger per DELETE, however many threads it removes (the worker deletes
// ephemeral threads in batches). Living in the checkpoint schema, it goes if that schema is dropped.
function cleanupTriggerSql(schema: string): string {
  return `
    CREATE OR REPLACE TRIGGER ${CLEANUP_TRIGGER} AFTER DELETE ON threads
      REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
      EXECUTE FUNCTION "${schema}".agentcron_delete_thread_checkpoints()`;
}

const TRIGGER_IN_PLACE = `
  SELECT 1 FROM pg_trigger t
    JOIN pg_proc p ON p.oid = t.tgfoid
    JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE t.tgrelid = 'threads'::regclass AND t.tgname = $1 AND n.nspname = $2`;

export interface CheckpointerOptions {
  /**
   * The process's pool: the checkpointer's queries share it (one connection budget per process),
   * and it takes the setup lock and installs the cleanup trigger.
   */
  pool: Pool;
  schema: string;
}

/**
 * The pool as PostgresSaver sees it: the same connections, but its end() (called by saver.end())
 * leaves the process's pool open; the process closes it last.
 */
function borrowed(pool: Pool): Pool {
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === 'end') return async () => {};
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The process's PostgresSaver, its tables created or migrated and the cleanup trigger in place.
 * Setup runs under a transaction-scoped advisory lock (PostgresSaver.setup() is not safe against
 * the api and worker starting together), held by an open transaction while setup runs on other
 * connections of the pool: no session state, so it works through a transaction pooler too.
 */
export async function openCheckpointer(opts: CheckpointerOptions): Promise<PostgresSaver> {
  // Loaded here so processes without LangGraph graphs never pay for it.
  const { PostgresSaver } = await import('@langchain/langgraph-checkpoint-postgres');
  const saver = new PostgresSaver(borrowed(opts.pool), undefined, { schema: opts.schema });
  // Held for the whole setup. It has the pool's permanent 'error' listener (createPool), so a
  // connection lost meanwhile fails the setup (retried by the caller) instead of the process.
  const lockClient = await opts.pool.connect();
  let broken: Error | undefined;
  try {
    await lockClient.query('BEGIN');
    // Waiting for another process's setup is not a lock wait lock_timeout should cut short, and
    // this transaction waits idle while setup runs elsewhere. SET LOCAL: gone at COMMIT.
    await lockClient.query('SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0');
    await lockClient.query(`SELECT pg_advisory_xact_lock(hashtext('agentcron.checkpointer.setup'))`);
    await saver.setup();
    await lockClient.query(cleanupFunctionSql(opts.schema));
    // Creating a trigger locks `threads` against writes for a moment: only when it is missing.
    const { rowCount } = await lockClient.query(TRIGGER_IN_PLACE, [CLEANUP_TRIGGER, opts.schema]);
    if (!rowCount) await lockClient.query(cleanupTriggerSql(opts.schema));
    await lockClient.query('COMMIT');
  } catch (err) {
    await lockClient.query('ROLLBACK').catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    // A client that broke is discarded by the pool, not handed to the next caller.
    lockClient.release(broken);
  }
  return saver;
}
