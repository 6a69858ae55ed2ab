import type { Queryable } from '../db/index.ts';
import { QUEUES } from './queue.ts';

export interface RunQueueHead {
  /**
   * Queue latency: how long the longest-waiting run job at the head of the queue (what workers
   * take next) has been able to start and not started: now() - greatest(start_after, created_on).
   * 0 when no run job could start now.
   */
  latencySeconds: number;
}

/** How many jobs at the head of the queue are looked at (a few hundred index entries at most). */
const HEAD = 200;

// The read walks pg-boss's fetch index (job_i11: (name, priority DESC, created_on, start_after)
// WHERE state < 'active' AND NOT blocked), in the order workers fetch, and stops early: the head
// is read, never the whole backlog. start_after is a key column of that index, so jobs parked
// for later (a retry's backoff, a run waiting for a limit, after_seconds) are passed over inside
// the index. A job whose group (thread) has a job active cannot start now either (the run worker
// starts one job per group at a time): job_i7 (name, group_id) WHERE state = 'active' answers.
const HEAD_SQL = (schema: string) => `
  WITH head AS (
    SELECT j.created_on, j.start_after, j.group_id
      FROM ${schema}.job j
     WHERE j.name = $1 AND j.state < 'active' AND NOT j.blocked AND j.start_after <= now()
     ORDER BY j.priority DESC, j.created_on
     LIMIT ${HEAD}
  )
  SELECT coalesce((SELECT extract(epoch FROM now() - min(greatest(h.start_after, h.created_on)))::float8
                     FROM head h
                    WHERE h.group_id IS NULL
                       OR NOT EXISTS (SELECT 1 FROM ${schema}.job a WHERE a.name = $1 AND a.state = 'active' AND a.group_id = h.group_id)),
                  0) AS latency`;

/** The head of the run queue: its latency (libs/metrics/saturation.ts). */
export async function runQueueHead(db: Queryable, schema: string): Promise<RunQueueHead> {
  const { rows } = await db.query<{ latency: number }>(HEAD_SQL(quoteIdent(schema)), [QUEUES.run]);
  return { latencySeconds: Math.max(0, rows[0].latency) };
}

/**
 * SQL for the created_on of the oldest run job not started yet on its first attempt (due now or
 * parked: a limit, after_seconds, jitter), NULL when none. A job sent back for a retry has its
 * retry_count moved on (snoozeRunJobs, and pg-boss's own retries) and is passed over. Walks the
 * fetch index from its oldest entry (agentcron never sets a priority, so that is the oldest job)
 * to the first such job.
 */
export function oldestFirstAttemptRunJobSql(schema: string): string {
  const s = quoteIdent(schema);
  return `(SELECT j.created_on FROM ${s}.job j
            WHERE j.name = '${QUEUES.run}' AND j.state < 'active' AND NOT j.blocked AND j.retry_count = 0
            ORDER BY j.priority DESC, j.created_on
            LIMIT 1)`;
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * SQL for the start_after of a run's job (job id = run id), for a query on agentcron's own tables
 * that needs when a run became due (a background run's after_seconds lives only there). A lookup
 * by pg-boss's primary key (name, id); NULL when the job is gone.
 */
export function runJobStartAfterSql(schema: string, runIdExpr: string): string {
  return `(SELECT j.start_after FROM ${quoteIdent(schema)}.job j WHERE j.name = '${QUEUES.run}' AND j.id = ${runIdExpr})`;
}
