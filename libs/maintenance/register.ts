import { CRON_CHANGED_CHANNEL } from '../crons/index.ts';
import type { Pool } from '../db/index.ts';
import { parseSchedule } from '../schedule/index.ts';
import type { JobRegistration } from './settings.ts';

// Every process registers the jobs at startup. INSERT ... ON CONFLICT makes that idempotent
// however many start at once (the unique key serialises them: one inserts, the others find the
// row as configured and write nothing). A changed schedule, timezone or enabled flag is applied;
// next_run_date then starts over from now, otherwise a restart leaves the stored occurrence alone.

const REGISTER = `
  INSERT INTO maintenance_jobs AS m (job_name, schedule, timezone, enabled, next_run_date)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[])
  ON CONFLICT (job_name) DO UPDATE
     SET schedule = EXCLUDED.schedule,
         timezone = EXCLUDED.timezone,
         enabled = EXCLUDED.enabled,
         next_run_date = CASE
           WHEN m.schedule IS DISTINCT FROM EXCLUDED.schedule OR m.timezone IS DISTINCT FROM EXCLUDED.timezone
             OR (EXCLUDED.enabled AND NOT m.enabled) OR m.next_run_date IS NULL
           THEN EXCLUDED.next_run_date ELSE m.next_run_date END,
         updated_at = now()
   WHERE (m.schedule, m.timezone, m.enabled) IS DISTINCT FROM (EXCLUDED.schedule, EXCLUDED.timezone, EXCLUDED.enabled)
      OR m.next_run_date IS NULL
  RETURNING job_name, (xmax = 0) AS inserted`;

export interface Registered {
  inserted: string[];
  updated: string[];
}

/** Writes each job's row (or brings it to the configured schedule); answers what changed. */
export async function registerMaintenanceJobs(pool: Pool, configured: JobRegistration[]): Promise<Registered> {
  if (configured.length === 0) return { inserted: [], updated: [] };
  // Most starts find every row as configured: one read then, and no schedule parsed (the time
  // zone and cron work was a tenth of a start's CPU, docs/performance.md, Start). Rows that were
  // as configured when read are what the upsert would have left alone.
  const { rows: stored } = await pool.query<{ job_name: string; schedule: string; timezone: string; enabled: boolean; now: Date }>(
    `SELECT m.job_name, m.schedule, m.timezone, m.enabled, now() AS now
       FROM (SELECT 1) one LEFT JOIN maintenance_jobs m ON m.job_name = ANY($1::text[]) AND m.next_run_date IS NOT NULL`,
    [configured.map((j) => j.name)],
  );
  const asStored = new Map(stored.filter((r) => r.job_name !== null).map((r) => [r.job_name, r]));
  const jobs = configured.filter((j) => {
    const r = asStored.get(j.name);
    return !r || r.schedule !== j.schedule || r.timezone !== j.timezone || r.enabled !== j.enabled;
  });
  if (jobs.length === 0) return { inserted: [], updated: [] };
  const now = stored[0].now;
  // From the database clock, like every occurrence (docs/scheduling.md, point 1: one clock).
  const next = jobs.map((j) => parseSchedule(j.schedule, { timezone: j.timezone, allowSeconds: true }).nextAfter(now));
  const { rows } = await pool.query<{ job_name: string; inserted: boolean }>(REGISTER, [
    jobs.map((j) => j.name),
    jobs.map((j) => j.schedule),
    jobs.map((j) => j.timezone),
    jobs.map((j) => j.enabled),
    next,
  ]);
  // Wake sleeping schedulers: a new or earlier occurrence may be due before their next poll.
  if (rows.length) await pool.query(`SELECT pg_notify($1, '')`, [CRON_CHANGED_CHANNEL]);
  return { inserted: rows.filter((r) => r.inserted).map((r) => r.job_name), updated: rows.filter((r) => !r.inserted).map((r) => r.job_name) };
}
