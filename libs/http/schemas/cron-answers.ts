import { z } from 'zod';
import { ATTEMPT_FIELDS } from './common.ts';
import { MISSED_POLICIES, ON_RUN_COMPLETED, OVERLAP_POLICIES } from './crons.ts';

// The crons API's answers, as the LangGraph SDK (1.15.x and 2.0.0) reads them plus agentcron's
// fields: a Cron, a cron's run, an occurrence of its ledger, fire times, a preview, a backfill's
// and a retry's result. The requests are in crons.ts.

const iso = z.string().openapi({ format: 'date-time' });

export const CronSchema = z
  .object({
    cron_id: z.string(),
    assistant_id: z.string(),
    thread_id: z.string().nullable().openapi({ description: 'null for a stateless cron' }),
    on_run_completed: z.enum(ON_RUN_COMPLETED).nullable(),
    end_time: iso.nullable(),
    schedule: z.string(),
    timezone: z.string().nullable().openapi({ description: 'Canonical IANA name of the zone given ("utc" is stored as "UTC"); null means UTC' }),
    created_at: iso,
    updated_at: iso,
    payload: z.record(z.string(), z.unknown()),
    user_id: z.string().openapi({ description: "The owner (admin keys see every user's crons)" }),
    next_run_date: iso.nullable().openapi({
      description:
        'Enabled: the next occurrence the scheduler fires. Disabled: when it would fire if enabled now (a disabled cron fires nothing). null ' +
        'once the cron has finished (end_time passed)',
    }),
    metadata: z.record(z.string(), z.unknown()),
    enabled: z.boolean(),
    paused_reason: z.string().nullable().openapi({ description: 'Why the cron is paused (set with enabled false); null when enabled' }),
    last_run_at: iso.nullable(),
    last_run_status: z.string().nullable(),
    last_run_error: z.string().nullable(),
    last_run_id: z.string().nullable(),
    finished_at: iso.nullable().openapi({ description: 'When end_time stopped the cron' }),
    missed_policy: z.enum(MISSED_POLICIES),
    overlap_policy: z.enum(OVERLAP_POLICIES),
    jitter_seconds: z.number().int().openapi({ description: 'Each scheduled occurrence starts within this many seconds after scheduled_for (0: at it)' }),
  })
  .openapi('Cron');

export const CronRunSchema = z
  .object({
    run_id: z.string(),
    thread_id: z.string(),
    assistant_id: z.string(),
    cron_id: z.string(),
    created_at: iso,
    updated_at: iso,
    status: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    multitask_strategy: z.string(),
    kwargs: z.record(z.string(), z.unknown()),
    scheduled_for: iso.nullable(),
    run_started_at: iso.nullable(),
    run_ended_at: iso.nullable(),
    error: z.unknown(),
    ...ATTEMPT_FIELDS,
  })
  .openapi('CronRun', { description: 'A run started by a cron (its first run, or a manual trigger), with cron_id' });

export const OccurrenceSchema = z
  .object({
    cron_id: z.string(),
    scheduled_for: iso,
    run_id: z.string().nullable(),
    thread_id: z.string().nullable(),
    trigger: z
      .enum(['schedule', 'create', 'manual', 'backfill'])
      .openapi({ description: "What fired it: its schedule, the cron's create, a trigger (run now), or a backfill" }),
    status: z.string().openapi({ description: 'enqueued, running, success, error, timeout, interrupted or skipped' }),
    reason: z.string().nullable().openapi({ description: 'For skipped: missed, overlap or end_time' }),
    error: z.string().nullable(),
    skipped_count: z.number().int(),
    enqueued_at: iso.nullable(),
    started_at: iso.nullable(),
    ended_at: iso.nullable(),
    created_at: iso,
    webhook_status: z
      .enum(['pending', 'sent', 'failed'])
      .nullable()
      .openapi({ description: "Delivery of the run's webhook: null when the run has none; pending while queued or being retried" }),
    webhook_attempts: z.number().int().openapi({ description: 'Delivery attempts made so far' }),
    webhook_error: z.string().nullable().openapi({ description: 'Why the last delivery attempt failed (at most a short excerpt of the answer)' }),
    webhook_sent_at: iso.nullable().openapi({ description: 'When the delivery that succeeded was sent' }),
    output_excerpt: z
      .string()
      .nullable()
      .openapi({ description: "The run's final values as JSON text, cut to LEDGER_OUTPUT_EXCERPT_BYTES (kept after its thread is deleted); null when none" }),
    output_truncated: z.boolean().openapi({ description: 'output_excerpt was cut (it may then not parse as JSON)' }),
    error_excerpt: z.string().nullable().openapi({ description: "The run's error ({error, message}) as JSON text, cut to LEDGER_OUTPUT_EXCERPT_BYTES" }),
    error_truncated: z.boolean(),
    retries: z.number().int().openapi({ description: 'Times this occurrence was retried (POST .../retry)' }),
    retried_at: iso.nullable().openapi({ description: 'When it was last retried' }),
    planned_for: iso.openapi({
      description: "When it was planned to start: scheduled_for plus the cron's jitter offset for a scheduled occurrence (scheduled_for itself without jitter)",
    }),
    ...ATTEMPT_FIELDS,
  })
  .openapi('CronOccurrence');

export const FireTimeSchema = z
  .object({
    utc: iso,
    local: z.string().openapi({ description: "The same instant in the schedule's timezone, with its offset" }),
    dst: z
      .enum(['skipped', 'repeated_first', 'repeated_second'])
      .nullable()
      .openapi({
        description:
          'skipped: the wall time named does not exist that day (clocks go forward) and the schedule fires once at the first instant after the gap; ' +
          'repeated_first / repeated_second: the wall time happens twice that day (clocks go back) and this is its first / second pass. null: no DST case',
      }),
    dst_note: z.string().nullable().openapi({ description: 'The DST case in words' }),
    planned_for: iso.nullable().openapi({
      description:
        "When the occurrence will start: utc plus the cron's deterministic jitter offset (utc itself without jitter). " +
        "null in a preview with jitter_seconds: the offset comes from the cron's id (the start falls in [utc, utc + jitter_seconds))",
    }),
  })
  .openapi('CronFireTime');

export const NextRunsSchema = z
  .object({
    cron_id: z.string(),
    schedule: z.string(),
    timezone: z.string(),
    description: z.string().openapi({ description: 'The schedule in words (cronstrue)' }),
    enabled: z.boolean(),
    jitter_seconds: z.number().int(),
    next: z.array(FireTimeSchema).openapi({
      description: 'From the next fire (next_run_date; for a disabled cron, what it would fire if enabled now) onward, none past end_time; none once finished',
    }),
  })
  .openapi('CronNextRuns');

export const PreviewSchema = z
  .object({
    schedule: z.string(),
    timezone: z.string().openapi({ description: 'The canonical IANA name of the zone given (UTC when none)' }),
    description: z.string().openapi({ description: 'The schedule in words (cronstrue)' }),
    from: iso.openapi({ description: 'The fire times are strictly after this instant' }),
    jitter_seconds: z.number().int(),
    next: z.array(FireTimeSchema),
  })
  .openapi('CronPreviewResult');

export const BackfillSchema = z
  .object({
    cron_id: z.string(),
    from: iso,
    to: iso,
    occurrences: z.number().int().openapi({ description: "The schedule's occurrences in the range (none past end_time)" }),
    fired: z.number().int().openapi({ description: 'Occurrences fired now, recorded in the ledger with trigger backfill' }),
    skipped_existing: z.number().int().openapi({ description: 'Already in the ledger (fired, skipped or backfilled before): not fired again' }),
    skipped_overlap: z.number().int().openapi({
      description: "Held back by the cron's overlap rule (overlap_policy, multitask_strategy reject); not recorded, so a later backfill fires them",
    }),
  })
  .openapi('CronBackfillResult');

export const RetrySchema = CronRunSchema.extend({
  retries: z.number().int().openapi({ description: 'Times the occurrence has now been retried' }),
}).openapi('CronRetryRun', { description: "The occurrence's new run (same cron_id and scheduled_for, so the same idempotency key)" });
