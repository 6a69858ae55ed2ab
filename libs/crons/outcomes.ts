import type { Queryable } from '../db/index.ts';

export interface RunOutcome {
  run_id: string;
  cron_id: string;
  scheduled_for: Date;
  status: string;
  /** Human-readable reason; null on success. */
  error: string | null;
  started_at: Date | null;
}

/**
 * A cron run ended: its ledger row and the cron's last_run_* follow. last_run_error is cleared by
 * a success. A run older (by scheduled_for) than the one last recorded never overwrites it.
 */
export async function recordOutcomes(db: Queryable, outcomes: RunOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  // Only an occurrence still open is settled; a late result after a cancel changes nothing.
  const { rows: settled } = await db.query<{ cron_id: string; scheduled_for: Date }>(
    `UPDATE cron_occurrences o
        SET status = v.status, error = v.error, started_at = v.started_at, ended_at = now()
       FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::timestamptz[])
            AS v(cron_id, scheduled_for, status, error, started_at)
      WHERE o.cron_id = v.cron_id AND o.scheduled_for = v.scheduled_for
        AND o.status IN ('enqueued', 'running')
      RETURNING o.cron_id, o.scheduled_for`,
    [
      outcomes.map((o) => o.cron_id),
      outcomes.map((o) => o.scheduled_for),
      outcomes.map((o) => o.status),
      outcomes.map((o) => o.error),
      outcomes.map((o) => o.started_at),
    ],
  );
  // One row per cron (the newest occurrence) so an UPDATE ... FROM never matches a cron twice.
  const open = new Set(settled.map((r) => `${r.cron_id}@${r.scheduled_for.getTime()}`));
  const newest = new Map<string, RunOutcome>();
  for (const o of outcomes.filter((x) => open.has(`${x.cron_id}@${x.scheduled_for.getTime()}`))) {
    const seen = newest.get(o.cron_id);
    if (!seen || seen.scheduled_for.getTime() <= o.scheduled_for.getTime()) newest.set(o.cron_id, o);
  }
  const latest = [...newest.values()];
  if (latest.length === 0) return;
  await db.query(
    `UPDATE crons c
        SET last_run_at = COALESCE(v.started_at, now()), last_run_status = v.status, last_run_error = v.error,
            last_run_id = v.run_id, last_run_scheduled_for = v.scheduled_for
       FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::timestamptz[])
            AS v(cron_id, run_id, scheduled_for, status, error, started_at)
      WHERE c.cron_id = v.cron_id
        AND (c.last_run_scheduled_for IS NULL OR c.last_run_scheduled_for <= v.scheduled_for)`,
    [
      latest.map((o) => o.cron_id),
      latest.map((o) => o.run_id),
      latest.map((o) => o.scheduled_for),
      latest.map((o) => o.status),
      latest.map((o) => o.error),
      latest.map((o) => o.started_at),
    ],
  );
}

/** A cron run started: its ledger row says so. */
export async function recordStarted(db: Queryable, started: { cron_id: string; scheduled_for: Date }[]): Promise<void> {
  if (started.length === 0) return;
  await db.query(
    `UPDATE cron_occurrences o SET status = 'running', started_at = now()
       FROM unnest($1::uuid[], $2::timestamptz[]) AS v(cron_id, scheduled_for)
      WHERE o.cron_id = v.cron_id AND o.scheduled_for = v.scheduled_for`,
    [started.map((s) => s.cron_id), started.map((s) => s.scheduled_for)],
  );
}
