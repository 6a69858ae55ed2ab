import type { Queryable } from '../db/index.ts';
import { QUEUES } from './queue.ts';
import { runQueueHeadSql } from './sql.ts';

export interface RunQueueHead {
  /**
   * Queue latency: how long the longest-waiting run job at the head of the queue (what workers
   * take next) has been able to start and not started: now() - greatest(start_after, created_on).
   * 0 when no run job could start now.
   */
  latencySeconds: number;
}

/** The head of the run queue: its latency (libs/metrics/saturation.ts). */
export async function runQueueHead(db: Queryable, schema: string): Promise<RunQueueHead> {
  const { rows } = await db.query<{ latency: number }>(runQueueHeadSql(schema), [QUEUES.run]);
  return { latencySeconds: Math.max(0, rows[0].latency) };
}
