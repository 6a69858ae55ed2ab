import { z } from 'zod';
import { registry } from '../openapi.ts';
import { CRON_SORT_KEYS, CronSearchBody, bulkFields, cronFilters, required, uuidFilter } from './crons.ts';

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

// ---- admin keys: every user's crons ----

const userFilter = {
  user_id: z.string().min(1).nullish().openapi({ description: "Only this user's crons (absent: every user's)" }),
};

export const AdminCronSearchBody = z
  .object({
    ...CronSearchBody.shape,
    ...userFilter,
    sort_by: z
      .enum([...CRON_SORT_KEYS, 'user_id'])
      .nullish()
      .transform((v) => v ?? 'created_at'),
  })
  .openapi('AdminCronSearch');
export type AdminCronSearchBody = z.output<typeof AdminCronSearchBody>;

export const AdminCronCountBody = z.object({ ...cronFilters, ...userFilter }).openapi('AdminCronCount');
export type AdminCronCountBody = z.output<typeof AdminCronCountBody>;

export const AdminCronBulkBody = z.object({ ...bulkFields, ...userFilter }).openapi('AdminCronBulk', {
  description: "As /runs/crons/bulk, over every user's crons (user_id narrows to one user and counts as a filter)",
});
export type AdminCronBulkBody = z.output<typeof AdminCronBulkBody>;

export const CronTransferBody = z
  .object({
    from_user_id: z.string({ error: required }).min(1),
    to_user_id: z.string({ error: required }).min(1),
    cron_ids: z.array(uuidFilter).min(1).max(10_000).nullish().openapi({ description: 'Only these crons of from_user_id (absent: all of them)' }),
    assistants: z
      .boolean()
      .nullish()
      .openapi({ description: "Also move from_user_id's own assistants the moved crons use (default false: they stay, and the crons keep running them)" }),
  })
  .openapi('CronTransfer');
export type CronTransferBody = z.output<typeof CronTransferBody>;

export const CronTransferAnswer = z
  .object({
    from_user_id: z.string(),
    to_user_id: z.string(),
    count: z.number().int().openapi({ description: 'Crons moved' }),
    cron_ids: z.array(z.string()),
    threads: z.number().int().openapi({ description: "Threads moved: thread crons' threads and the threads stateless crons' runs kept" }),
    runs: z.number().int().openapi({ description: 'Runs on those threads, moved with them' }),
    assistants: z.number().int().openapi({ description: 'Assistants moved (with "assistants": true)' }),
    assistants_kept: z.array(z.string()).openapi({ description: "The old owner's assistants moved crons use that stayed with the old owner" }),
  })
  .openapi('CronTransferResult');
