import type { MaintenanceJob } from '../types.ts';

// 4. Daily statistics snapshot, per cron and per assistant, for yesterday and today (so far) in
// MAINTENANCE_TIMEZONE; a repeat recomputes the same rows. Cron figures come from the occurrence
// ledger, which outlives ephemeral threads and their runs: occurrences scheduled that day
// (pre-filtered on the ledger's created_at index; an occurrence fired more than a day late is
// not counted). An assistant's figures are its crons' occurrences plus its runs no cron started
// (created that day). runs = occurrences that fired; duration = ended − started; fire lag =
// enqueued − scheduled_for, scheduled occurrences only (0 for one fired ahead, CRON_LOOKAHEAD_MS).

const SNAPSHOT = `
  WITH bounds AS (
    SELECT ($1::date)::timestamp AT TIME ZONE $2 AS lo, ($1::date + 1)::timestamp AT TIME ZONE $2 AS hi
  ), occ AS (
    SELECT o.cron_id, o.run_id, o.status,
           extract(epoch FROM (o.ended_at - o.started_at)) * 1000 AS duration_ms,
           CASE WHEN o.trigger = 'schedule' AND o.enqueued_at IS NOT NULL
                THEN greatest(extract(epoch FROM (o.enqueued_at - o.scheduled_for)) * 1000, 0) END AS lag_ms
      FROM cron_occurrences o, bounds b
     WHERE o.created_at >= b.lo - interval '1 day' AND o.created_at < b.hi + interval '1 day'
       AND o.scheduled_for >= b.lo AND o.scheduled_for < b.hi
  ), per_assistant AS (
    SELECT coalesce(c.assistant_id, r.assistant_id) AS assistant_id, o.status, o.duration_ms, o.lag_ms
      FROM occ o LEFT JOIN crons c ON c.cron_id = o.cron_id LEFT JOIN runs r ON r.run_id = o.run_id
    UNION ALL
    SELECT r.assistant_id, r.status, extract(epoch FROM (r.ended_at - r.started_at)) * 1000, NULL
      FROM runs r, bounds b
     WHERE r.cron_id IS NULL AND r.created_at >= b.lo AND r.created_at < b.hi
  ), rows AS (
    SELECT 'cron' AS scope, cron_id AS scope_id, status, duration_ms, lag_ms FROM occ
    UNION ALL
    SELECT 'assistant', assistant_id, status, duration_ms, lag_ms FROM per_assistant WHERE assistant_id IS NOT NULL
  )
  INSERT INTO run_daily_stats AS s (day, scope, scope_id, timezone, runs, successes, failures, timeouts, interrupted, skipped,
                                    p50_duration_ms, p95_duration_ms, p95_fire_lag_ms, computed_at)
  SELECT $1::date, scope, scope_id, $2,
         count(*) FILTER (WHERE status <> 'skipped'),
         count(*) FILTER (WHERE status = 'success'),
         count(*) FILTER (WHERE status = 'error'),
         count(*) FILTER (WHERE status = 'timeout'),
         count(*) FILTER (WHERE status = 'interrupted'),
         count(*) FILTER (WHERE status = 'skipped'),
         percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
         percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
         percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_ms),
         now()
    FROM rows
   GROUP BY scope, scope_id
  ON CONFLICT (day, scope, scope_id) DO UPDATE
     SET timezone = EXCLUDED.timezone, runs = EXCLUDED.runs, successes = EXCLUDED.successes, failures = EXCLUDED.failures,
         timeouts = EXCLUDED.timeouts, interrupted = EXCLUDED.interrupted, skipped = EXCLUDED.skipped,
         p50_duration_ms = EXCLUDED.p50_duration_ms, p95_duration_ms = EXCLUDED.p95_duration_ms,
         p95_fire_lag_ms = EXCLUDED.p95_fire_lag_ms, computed_at = EXCLUDED.computed_at
  RETURNING scope`;

export const dailyStats: MaintenanceJob = {
  name: 'daily_stats',
  async run({ pool, settings }) {
    const tz = settings.timezone;
    const { rows } = await pool.query<{ today: string; yesterday: string }>(
      `SELECT to_char((now() AT TIME ZONE $1)::date, 'YYYY-MM-DD') AS today,
              to_char((now() AT TIME ZONE $1)::date - 1, 'YYYY-MM-DD') AS yesterday`,
      [tz],
    );
    const days = [rows[0].yesterday, rows[0].today];
    const written: Record<string, { cron: number; assistant: number }> = {};
    for (const day of days) {
      const { rows: out } = await pool.query<{ scope: string }>(SNAPSHOT, [day, tz]);
      written[day] = { cron: out.filter((r) => r.scope === 'cron').length, assistant: out.filter((r) => r.scope === 'assistant').length };
    }
    return { timezone: tz, days: written };
  },
};
