import type { Queryable } from '../db/index.ts';
import { QUEUES } from '../queue/index.ts';
import type { PgBoss } from '../queue/index.ts';
import type { MonitorFindings } from './jobs/index.ts';
import { enqueueNow } from './scheduling.ts';

/** A maintenance job as GET /admin/maintenance shows it. */
export interface MaintenanceJobResponse {
  job: string;
  schedule: string;
  timezone: string;
  enabled: boolean;
  next_run_date: string | null;
  last_scheduled_for: string | null;
  last_run_at: string | null;
  last_finished_at: string | null;
  last_run_status: string | null;
  last_run_error: string | null;
  last_duration_ms: number | null;
  last_result: Record<string, unknown> | null;
  runs_total: number;
  failures_total: number;
  missed_total: number;
}

interface Row {
  job_name: string;
  schedule: string;
  timezone: string;
  enabled: boolean;
  next_run_date: Date | null;
  last_scheduled_for: Date | null;
  last_run_at: Date | null;
  last_finished_at: Date | null;
  last_run_status: string | null;
  last_run_error: string | null;
  last_duration_ms: number | null;
  last_result: Record<string, unknown> | null;
  runs_total: string;
  failures_total: string;
  missed_total: string;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toResponse(r: Row): MaintenanceJobResponse {
  return {
    job: r.job_name,
    schedule: r.schedule,
    timezone: r.timezone,
    enabled: r.enabled,
    next_run_date: iso(r.next_run_date),
    last_scheduled_for: iso(r.last_scheduled_for),
    last_run_at: iso(r.last_run_at),
    last_finished_at: iso(r.last_finished_at),
    last_run_status: r.last_run_status,
    last_run_error: r.last_run_error,
    last_duration_ms: r.last_duration_ms,
    last_result: r.last_result,
    runs_total: Number(r.runs_total),
    failures_total: Number(r.failures_total),
    missed_total: Number(r.missed_total),
  };
}

const COLUMNS = `job_name, schedule, timezone, enabled, next_run_date, last_scheduled_for, last_run_at, last_finished_at,
  last_run_status, last_run_error, last_duration_ms, last_result, runs_total, failures_total, missed_total`;

export async function listMaintenanceJobs(db: Queryable): Promise<MaintenanceJobResponse[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM maintenance_jobs ORDER BY job_name`);
  return rows.map(toResponse);
}

export async function getMaintenanceJob(db: Queryable, name: string): Promise<MaintenanceJobResponse | null> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM maintenance_jobs WHERE job_name = $1`, [name]);
  return rows[0] ? toResponse(rows[0]) : null;
}

/**
 * Run a registered job now, on a worker, whatever its schedule or enabled flag (an operator
 * asked); answers the pg-boss job id, or null when no such job is registered.
 */
export async function triggerMaintenanceJob(db: Queryable, boss: PgBoss, name: string): Promise<string | null> {
  const job = await getMaintenanceJob(db, name);
  if (!job) return null;
  return enqueueNow(boss, name);
}

const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);

/**
 * Triggers a job now (triggerMaintenanceJob) and waits up to `waitSeconds` for it to end: its
 * pg-boss job id and state then (completed, failed or cancelled; else still under way, `done`
 * false), or null when no such job is registered.
 */
export async function triggerAndWait(
  db: Queryable,
  boss: PgBoss,
  name: string,
  waitSeconds: number,
): Promise<{ jobId: string; state: string; done: boolean } | null> {
  const jobId = await triggerMaintenanceJob(db, boss, name);
  if (!jobId) return null;
  let state = 'created';
  const deadline = Date.now() + waitSeconds * 1000;
  while (Date.now() < deadline) {
    state = (await boss.getJobById(QUEUES.maintenance, jobId))?.state ?? state;
    if (FINAL_STATES.has(state)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { jobId, state, done: FINAL_STATES.has(state) };
}

/** The heartbeat monitor's latest findings, for /health; null until it has run once. */
export async function latestMonitorFindings(db: Queryable): Promise<{ findings: MonitorFindings; status: string | null; finished_at: Date | null } | null> {
  const { rows } = await db.query<{ last_result: MonitorFindings | null; last_run_status: string | null; last_finished_at: Date | null }>(
    `SELECT last_result, last_run_status, last_finished_at FROM maintenance_jobs WHERE job_name = 'heartbeat_monitor'`,
  );
  const row = rows[0];
  if (!row?.last_result || !('warnings' in row.last_result)) return null;
  return { findings: row.last_result, status: row.last_run_status, finished_at: row.last_finished_at };
}
