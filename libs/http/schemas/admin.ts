import { z } from 'zod';
import { registry } from '../openapi.ts';

// Shapes of the admin endpoints (/admin/*): the built-in maintenance jobs.

export const MaintenanceJobSchema = registry.register(
  'MaintenanceJob',
  z.object({
    job: z
      .string()
      .describe('Job name (retention_purge, ephemeral_thread_sweep, stale_run_reaper, daily_stats, heartbeat_monitor, thread_ttl, queue_hygiene).'),
    schedule: z.string().describe('Cron schedule (MAINTENANCE_<JOB>_SCHEDULE).'),
    timezone: z.string().describe('MAINTENANCE_TIMEZONE.'),
    enabled: z.boolean().describe('MAINTENANCE_<JOB>_ENABLED; a disabled job still runs when triggered.'),
    next_run_date: z.string().nullable(),
    last_scheduled_for: z.string().nullable().describe('The occurrence the scheduler last enqueued.'),
    last_run_at: z.string().nullable().describe('When the last execution started.'),
    last_finished_at: z.string().nullable(),
    last_run_status: z.enum(['running', 'success', 'error']).nullable(),
    last_run_error: z.string().nullable().describe("The last execution's error; null after a success."),
    last_duration_ms: z.number().int().nullable(),
    last_result: z.record(z.string(), z.unknown()).nullable().describe('What the last successful execution did (counts, findings).'),
    runs_total: z.number().int(),
    failures_total: z.number().int(),
    missed_total: z.number().int().describe('Occurrences skipped because no scheduler ran at their time (only the latest fires).'),
  }),
);

export const TriggerParams = z.object({ job: z.string().min(1) });

export const TriggerQuery = z.object({
  wait_seconds: z.coerce
    .number()
    .int()
    .min(0)
    .max(300)
    .default(0)
    .describe('Wait up to this long for the execution to end and answer 200 with the job; 0 answers 202 at once.'),
});

export const TriggerAnswer = registry.register(
  'MaintenanceTrigger',
  z.object({
    job: z.string(),
    job_id: z.string().describe('The pg-boss job on agentcron.maintenance.'),
    state: z.string().describe('The pg-boss job state when answered: created, active, completed ...'),
    maintenance_job: MaintenanceJobSchema.nullable().describe('The job row; after a wait, with this execution recorded.'),
  }),
);
