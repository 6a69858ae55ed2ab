import type { Queryable } from '../db/index.ts';

// Reading the daily statistics the daily_stats job writes (run_daily_stats, jobs/stats.ts): a
// cron's or an assistant's days, newest first, with their totals.

/** The counts summed over the days read. */
export const DAILY_TOTAL_FIELDS = ['runs', 'successes', 'failures', 'timeouts', 'interrupted', 'skipped'] as const;

interface DayRow {
  day: string;
  timezone: string;
  runs: number;
  successes: number;
  failures: number;
  timeouts: number;
  interrupted: number;
  skipped: number;
  p50_duration_ms: number | null;
  p95_duration_ms: number | null;
  p95_fire_lag_ms: number | null;
  computed_at: Date;
}

// The period: the last `days` days up to today, in the zone daily_stats cuts days in.
const READ_DAYS = `
  WITH period AS (SELECT (now() AT TIME ZONE $3)::date AS today)
  SELECT to_char(s.day, 'YYYY-MM-DD') AS day, s.timezone, s.runs, s.successes, s.failures, s.timeouts, s.interrupted, s.skipped,
         s.p50_duration_ms, s.p95_duration_ms, s.p95_fire_lag_ms, s.computed_at,
         to_char(p.today - ($4::int - 1), 'YYYY-MM-DD') AS period_from, to_char(p.today, 'YYYY-MM-DD') AS period_to
    FROM period p
    LEFT JOIN run_daily_stats s ON s.scope = $1 AND s.scope_id = $2 AND s.day > p.today - $4::int AND s.day <= p.today
   ORDER BY s.day DESC`;

/** The last `days` days up to today (in `timezone`, the zone daily_stats cuts days in) of one cron's or assistant's figures. */
export async function readDailyStats(db: Queryable, scope: 'cron' | 'assistant', id: string, timezone: string, days: number) {
  const { rows } = await db.query<DayRow & { day: string | null; period_from: string; period_to: string }>(READ_DAYS, [scope, id, timezone, days]);
  const found = rows.filter((r) => r.day !== null);
  return {
    timezone,
    from: rows[0].period_from,
    to: rows[0].period_to,
    days: found.map((r) => ({
      day: r.day,
      timezone: r.timezone,
      runs: r.runs,
      successes: r.successes,
      failures: r.failures,
      timeouts: r.timeouts,
      interrupted: r.interrupted,
      skipped: r.skipped,
      p50_duration_ms: r.p50_duration_ms,
      p95_duration_ms: r.p95_duration_ms,
      p95_fire_lag_ms: r.p95_fire_lag_ms,
      computed_at: r.computed_at.toISOString(),
    })),
    totals: Object.fromEntries(DAILY_TOTAL_FIELDS.map((f) => [f, found.reduce((n, r) => n + r[f], 0)])),
  };
}
