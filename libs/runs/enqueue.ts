import type { PoolClient } from '../db/index.ts';
import { prepared } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { enqueueRuns } from '../queue/index.ts';

export type MultitaskStrategy = 'reject' | 'enqueue' | 'interrupt' | 'rollback';

export interface NewRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  user_id: string;
  cron_id: string | null;
  scheduled_for: Date | null;
  /** The run body: input, config, context, webhook ... */
  kwargs: Record<string, unknown>;
  multitask_strategy: MultitaskStrategy;
  metadata: Record<string, unknown>;
  /** Create the run's thread first (a stateless cron's fresh thread). */
  new_thread?: { metadata: Record<string, unknown>; ephemeral: boolean };
  /** Runs with the same key never execute at the same time on any worker (thread or cron serialisation); null: none. */
  serialize_key: string | null;
  /** Not before this instant (a background run's after_seconds); at once when absent. */
  start_after?: Date;
}

/**
 * Writes runs (and their new threads) and enqueues one pg-boss job per run, all through the
 * caller's transaction: the runs exist and are queued if and only if it commits. Runs whose
 * (cron_id, scheduled_for) already exists are not written again; answers the ids written.
 */
export async function insertRuns(client: PoolClient, boss: PgBoss, runs: NewRun[]): Promise<Set<string>> {
  if (runs.length === 0) return new Set();
  const withThread = runs.filter((r) => r.new_thread);
  if (withThread.length) {
    await client.query(
      prepared(
        client,
        `INSERT INTO threads (thread_id, user_id, metadata, ephemeral)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::boolean[])
       ON CONFLICT (thread_id) DO NOTHING`,
        [
          withThread.map((r) => r.thread_id),
          withThread.map((r) => r.user_id),
          withThread.map((r) => JSON.stringify(r.new_thread!.metadata)),
          withThread.map((r) => r.new_thread!.ephemeral),
        ],
      ),
    );
  }
  const { rows } = await client.query<{ run_id: string }>(
    prepared(
      client,
      `INSERT INTO runs (run_id, thread_id, assistant_id, user_id, cron_id, scheduled_for, kwargs, multitask_strategy, metadata)
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::timestamptz[], $7::jsonb[], $8::text[], $9::jsonb[])
     ON CONFLICT DO NOTHING
     RETURNING run_id`,
      [
        runs.map((r) => r.run_id),
        runs.map((r) => r.thread_id),
        runs.map((r) => r.assistant_id),
        runs.map((r) => r.user_id),
        runs.map((r) => r.cron_id),
        runs.map((r) => r.scheduled_for),
        runs.map((r) => JSON.stringify(r.kwargs)),
        runs.map((r) => r.multitask_strategy),
        runs.map((r) => JSON.stringify(r.metadata)),
      ],
    ),
  );
  const written = new Set(rows.map((r) => r.run_id));
  const orphans = withThread.filter((r) => !written.has(r.run_id)).map((r) => r.thread_id);
  if (orphans.length) {
    // The occurrence already had its run: drop the thread made for the duplicate.
    await client.query(`DELETE FROM threads WHERE thread_id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.thread_id = threads.thread_id)`, [
      orphans,
    ]);
  }
  await enqueueRuns(
    boss,
    runs.filter((r) => written.has(r.run_id)).map((r) => ({ run_id: r.run_id, group: r.serialize_key, start_after: r.start_after })),
    client,
  );
  return written;
}
