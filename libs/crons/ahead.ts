import type { PoolClient } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { withdrawUnstartedRuns } from '../runs/index.ts';
import type { CronRow } from './types.ts';

// Occurrences fired ahead of their instant (CRON_LOOKAHEAD_MS, libs/crons/scheduler.ts) belong to
// the cron's definition at the time they were fired. A pause, a change or a delete before the
// instant withdraws them (libs/runs/lifecycle.ts withdrawUnstartedRuns: run, thread, ledger row,
// job) in its own transaction, which holds the crons' row locks, and puts the cron's schedule
// back where it was before them: next_run_date at the earliest withdrawn occurrence (it fires
// under the new definition if still due), fired_through at the latest occurrence handled before it.

// A cron finished by firing its last occurrence ahead (next_run_date NULL) is no longer finished.
const MOVE_BACK = `
  UPDATE crons c
     SET next_run_date = CASE WHEN c.next_run_date IS NULL OR c.next_run_date > v.earliest THEN v.earliest ELSE c.next_run_date END,
         fired_through = (SELECT max(o.scheduled_for) FROM cron_occurrences o WHERE o.cron_id = c.cron_id AND o.scheduled_for < v.earliest),
         enabled = c.enabled OR (c.next_run_date IS NULL AND c.finished_at IS NOT NULL),
         finished_at = CASE WHEN c.next_run_date IS NULL THEN NULL ELSE c.finished_at END
    FROM (SELECT cron_id, min(scheduled_for) AS earliest FROM unnest($1::uuid[], $2::timestamptz[]) AS w(cron_id, scheduled_for) GROUP BY cron_id) v
   WHERE c.cron_id = v.cron_id
  RETURNING c.cron_id, c.next_run_date, c.fired_through, c.enabled, c.finished_at`;

type MovedBack = Pick<CronRow, 'cron_id' | 'next_run_date' | 'fired_through' | 'enabled' | 'finished_at'>;

/**
 * Withdraws the occurrences of the locked crons that were fired ahead and have not reached their
 * instant, and moves each such cron back (see above). Answers the crons moved back, by id, with
 * their new schedule columns: a caller that read the rows before applies them (applyMovedBack).
 */
export async function withdrawAhead(client: PoolClient, boss: PgBoss, cronIds: string[]): Promise<Map<string, MovedBack>> {
  const withdrawn = await withdrawUnstartedRuns(client, boss, cronIds);
  if (withdrawn.length === 0) return new Map();
  const { rows } = await client.query<MovedBack>(MOVE_BACK, [withdrawn.map((w) => w.cron_id), withdrawn.map((w) => w.scheduled_for)]);
  return new Map(rows.map((r) => [r.cron_id, r]));
}

/** A row read before withdrawAhead, with what it moved back. */
export function applyMovedBack<T extends CronRow>(row: T, moved: Map<string, MovedBack>): T {
  const m = moved.get(row.cron_id);
  return m ? { ...row, next_run_date: m.next_run_date, fired_through: m.fired_through, enabled: m.enabled, finished_at: m.finished_at } : row;
}
