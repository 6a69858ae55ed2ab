import { z } from 'zod';
import { MAX_JITTER_SECONDS } from '../../firing/index.ts';
import { PAYLOAD_KEYS } from '../../crons/index.ts';
import { RetryPolicySchema, WEBHOOK_DESCRIPTION, selectFields, webhookUrl } from './common.ts';

// Request and response shapes of the crons API, as the LangGraph SDK (1.15.x and 2.0.0) sends and
// reads them. Unknown keys are dropped (z.object strips), never an error. `null` on an optional
// field means "not given", except where an update gives it a meaning (end_time, timezone, webhook).

/** "required" for a missing key instead of zod's "expected string, received undefined". */
export const required = (iss: { input: unknown }) => (iss.input === undefined ? 'required' : undefined);

const jsonObject = z.record(z.string(), z.unknown(), { error: required });

/** An ISO 8601 date-time; one without an offset is read as UTC (never as the server's local time). */
export const dateTime = z.iso
  .datetime({ offset: true, local: true, error: 'expected an ISO 8601 date-time, e.g. 2030-01-01T09:00:00Z' })
  .transform((s) => new Date(/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(s) ? s : `${s}Z`));

/** A date-time schedules compute with: from 1900 up to 9000 (libs/schedule's calendar). */
export const scheduleInstant = dateTime.refine((d) => d.getTime() >= Date.UTC(1900, 0, 1) && d.getTime() < Date.UTC(9000, 0, 1), {
  message: 'must be between 1900-01-01 and 9000-01-01',
});

/** The longest pause note (paused_reason), in characters. */
export const PAUSED_REASON_MAX = 280;

export const MULTITASK_STRATEGIES = ['reject', 'enqueue', 'interrupt', 'rollback'] as const;
export const ON_RUN_COMPLETED = ['delete', 'keep'] as const;
export const MISSED_POLICIES = ['latest', 'all', 'none'] as const;
export const OVERLAP_POLICIES = ['allow', 'skip', 'buffer_one'] as const;

const interrupts = z.union([z.literal('*'), z.array(z.string())], { error: 'expected "*" or a list of node names' });

/** Run-body fields a cron stores in its payload and hands to every run it starts. */
const payloadFields = {
  config: jsonObject.nullish(),
  context: jsonObject.nullish(),
  webhook: webhookUrl.nullish().openapi({ description: WEBHOOK_DESCRIPTION }),
  multitask_strategy: z.enum(MULTITASK_STRATEGIES).nullish(),
  interrupt_before: interrupts.nullish(),
  interrupt_after: interrupts.nullish(),
  stream_mode: z.union([z.string(), z.array(z.string())], { error: 'expected a stream mode or a list of them' }).nullish(),
  stream_subgraphs: z.boolean().nullish(),
  stream_resumable: z.boolean().nullish(),
  checkpoint_during: z.boolean().nullish(),
  durability: z.enum(['sync', 'async', 'exit']).nullish(),
  retry_policy: RetryPolicySchema.nullish().openapi({
    description:
      'agentcron: how a run of this cron that fails with a retryable error is attempted again (fields left out take the defaults); ' +
      "stored in the payload, so every run carries it as kwargs.retry_policy; wins over the assistant's and the graph's. null on update clears it. " +
      'The LangGraph SDK does not send this field: it can put the same object in config.retry_policy.',
  }),
};

// The cron's payload (libs/crons PAYLOAD_KEYS) is input and these fields, in this order.
if (JSON.stringify(['input', ...Object.keys(payloadFields)]) !== JSON.stringify(PAYLOAD_KEYS)) {
  throw new Error(`the CronCreate payload fields differ from libs/crons PAYLOAD_KEYS (${PAYLOAD_KEYS.join(', ')})`);
}

/** Fields of the cron itself (not its run body) that create and update share. */
const cronFields = {
  timezone: z.string().nullish(),
  end_time: dateTime.nullish(),
  enabled: z.boolean().nullish(),
  paused_reason: z
    .string()
    .max(PAUSED_REASON_MAX, { message: `at most ${PAUSED_REASON_MAX} characters` })
    .nullish()
    .openapi({
      description:
        `agentcron: why the cron is paused, at most ${PAUSED_REASON_MAX} characters; only with enabled false (or on a disabled ` +
        `cron), cleared when it is enabled; null clears it`,
    }),
  on_run_completed: z.enum(ON_RUN_COMPLETED).nullish(),
  metadata: jsonObject.nullish(),
  missed_policy: z.enum(MISSED_POLICIES).nullish().openapi({ description: 'agentcron: missed occurrences after downtime (default latest)' }),
  overlap_policy: z
    .enum(OVERLAP_POLICIES)
    .nullish()
    .openapi({ description: 'agentcron, stateless crons only: when the previous run is still going (default allow)' }),
  jitter_seconds: z
    .number({ error: 'expected an integer number of seconds' })
    .int({ message: 'expected an integer number of seconds' })
    .min(0, { message: 'must be at least 0' })
    .max(MAX_JITTER_SECONDS, { message: `must be at most ${MAX_JITTER_SECONDS} (an hour)` })
    .nullish()
    .openapi({
      description:
        `agentcron: each scheduled occurrence starts at scheduled_for plus a deterministic offset in [0, jitter_seconds) derived from (cron_id, ` +
        `scheduled_for); 0-${MAX_JITTER_SECONDS}, default 0. ` +
        "The cron's first run, triggers and backfills start at once. The LangGraph SDK does not send this field.",
    }),
};

export const CronCreateBody = z
  .object({
    assistant_id: z.string({ error: required }).min(1).openapi({ description: 'An assistant id, or a graph id (its default assistant)' }),
    schedule: z.string({ error: required }).openapi({
      description:
        'Cron expression, 5 fields (6 with seconds first when enabled). A "CRON_TZ=<zone> " or "TZ=<zone> " prefix sets the timezone (how SDK ' +
        '2.x, which sends no timezone, names one); stored without the prefix',
    }),
    input: jsonObject.nullish().openapi({ description: 'The input of every run; optional (the SDKs send none when not given): runs then get no input (null)' }),
    ...payloadFields,
    ...cronFields,
    if_not_exists: z.enum(['create', 'reject']).nullish().openapi({ description: 'Thread crons: create the thread when it does not exist' }),
  })
  .openapi('CronCreate');
export type CronCreateBody = z.output<typeof CronCreateBody>;

export const CronUpdateBody = z
  .object({
    schedule: z.string().nullish(),
    input: jsonObject.optional(),
    ...payloadFields,
    ...cronFields,
  })
  .openapi('CronUpdate');
export type CronUpdateBody = z.output<typeof CronUpdateBody>;

/** Fields a Cron answer may be reduced to with `select` ("now" is the database's current time). */
export const CRON_FIELDS = [
  'cron_id',
  'assistant_id',
  'thread_id',
  'on_run_completed',
  'end_time',
  'schedule',
  'timezone',
  'created_at',
  'updated_at',
  'payload',
  'user_id',
  'next_run_date',
  'metadata',
  'enabled',
  'paused_reason',
  'last_run_at',
  'last_run_status',
  'last_run_error',
  'last_run_id',
  'finished_at',
  'missed_policy',
  'overlap_policy',
  'jitter_seconds',
  'now',
] as const;
export type CronField = (typeof CRON_FIELDS)[number];

export const CRON_SORT_KEYS = ['cron_id', 'assistant_id', 'thread_id', 'created_at', 'updated_at', 'next_run_date', 'end_time'] as const;

export const uuidFilter = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, { message: 'must be a UUID' });

export const cronFilters = {
  assistant_id: z.string().min(1).nullish().openapi({ description: 'An assistant id, or a graph id (its default assistant)' }),
  thread_id: uuidFilter.nullish(),
  enabled: z.boolean().nullish(),
  metadata: jsonObject.nullish().openapi({ description: 'Crons whose metadata contains this object' }),
};

export const CronSearchBody = z
  .object({
    ...cronFilters,
    cron_id_prefix: z
      .string()
      .regex(/^(?=(?:[0-9a-f]-?){8})[0-9a-f-]{8,36}$/i, { message: 'must be 8 or more hex digits of a cron id (dashes allowed)' })
      .nullish()
      .openapi({
        description: 'agentcron: crons whose id starts with this (8 or more hex digits, as the dashboard shows ids); the CLI resolves short ids with it',
      }),
    limit: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .nullish()
      .transform((v) => v ?? 10),
    offset: z
      .number()
      .int()
      .min(0)
      .nullish()
      .transform((v) => v ?? 0),
    sort_by: z
      .enum(CRON_SORT_KEYS)
      .nullish()
      .transform((v) => v ?? 'created_at'),
    sort_order: z
      .enum(['asc', 'desc'])
      .nullish()
      .transform((v) => v ?? 'desc'),
    // A list of field names (a JSON-text or comma-separated string is read as that list).
    select: selectFields(CRON_FIELDS)
      .nullish()
      .transform((v) => v ?? null),
  })
  .openapi('CronSearch');
export type CronSearchBody = z.output<typeof CronSearchBody>;

export const CronCountBody = z.object(cronFilters).openapi('CronCount');
export type CronCountBody = z.output<typeof CronCountBody>;

export const CRON_BULK_ACTIONS = ['disable', 'enable', 'delete'] as const;
export type CronBulkAction = (typeof CRON_BULK_ACTIONS)[number];

export const bulkFields = {
  action: z.enum(CRON_BULK_ACTIONS, { error: (iss) => (iss.input === undefined ? 'required' : 'expected "disable", "enable" or "delete"') }),
  ...cronFilters,
  paused_reason: z
    .string()
    .max(PAUSED_REASON_MAX, { message: `at most ${PAUSED_REASON_MAX} characters` })
    .nullish()
    .openapi({ description: 'With action "disable": the pause note of every cron disabled (enable clears the notes)' }),
  all: z.boolean().nullish().openapi({ description: 'Required (true) when no filter is given: every cron of the caller' }),
};

export const CronBulkBody = z.object(bulkFields).openapi('CronBulk', {
  description:
    'Disable, enable or delete every cron of the caller matching the filters (at least one, or "all": true). Enabling follows PATCH: a passed ' +
    'next_run_date restarts from now, a finished cron comes back. Deleting also deletes their occurrence ledgers; runs already started finish.',
});
export type CronBulkBody = z.output<typeof CronBulkBody>;

export const CronBulkAnswer = z
  .object({
    action: z.enum(CRON_BULK_ACTIONS),
    count: z.number().int().openapi({ description: 'The crons that matched: each is now disabled, enabled or deleted' }),
  })
  .openapi('CronBulkResult');

export const CronIdParams = z.object({ cron_id: z.string().openapi({ format: 'uuid' }) });
export const ThreadIdParams = z.object({ thread_id: z.string().openapi({ format: 'uuid' }) });

export const OccurrencesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(10),
  offset: z.coerce.number().int().min(0).default(0),
});

export const RECENT_OCCURRENCES_MAX = 5000;

export const RecentOccurrencesQuery = z.object({
  scheduled_after: scheduleInstant.openapi({ description: 'Occurrences scheduled at or after this instant' }),
  limit: z.coerce.number().int().min(1).max(RECENT_OCCURRENCES_MAX).default(1000),
});

export const NextQuery = z.object({
  count: z.coerce.number().int().min(1).max(1000).default(5),
  from: scheduleInstant.optional().openapi({
    description: "Only fire times strictly after this instant (a page's last time gives the next page); never before the cron's next fire",
  }),
});

export const PreviewBody = z
  .object({
    schedule: z.string({ error: required }).openapi({ description: 'Cron expression, as for create (same rules, same 422s)' }),
    timezone: z.string().nullish().openapi({ description: 'IANA timezone (default UTC)' }),
    from: scheduleInstant.nullish().openapi({ description: 'Fire times strictly after this instant (default: now)' }),
    count: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .nullish()
      .transform((v) => v ?? 10),
    jitter_seconds: cronFields.jitter_seconds,
  })
  .openapi('CronPreview');
export type PreviewBody = z.output<typeof PreviewBody>;

export const BackfillBody = z
  .object({
    from: scheduleInstant
      .refine((d) => d.getTime() >= 0, { message: 'must be 1970-01-01T00:00:00Z or later' })
      .openapi({ description: 'First instant of the range (included), 1970 or later' }),
    to: scheduleInstant.openapi({ description: 'Last instant of the range (included); not in the future' }),
    overlap: z
      .enum(['cron', 'allow'])
      .nullish()
      .openapi({
        description:
          "agentcron, stateless crons: cron (default) applies the cron's overlap_policy (skip / buffer_one fire only what they allow now); allow " +
          'fires every occurrence of the range now',
      }),
  })
  .openapi('CronBackfill');
export type BackfillBody = z.output<typeof BackfillBody>;

/** The retry path's occurrence: an ISO 8601 date-time (a 422 naming path.scheduled_for otherwise). */
export const OccurrencePath = z.object({ scheduled_for: scheduleInstant });

export const OccurrenceParams = z.object({
  cron_id: z.string().openapi({ format: 'uuid' }),
  scheduled_for: z.string().openapi({ format: 'date-time', description: "The occurrence's scheduled_for, as the ledger shows it (URL-encoded)" }),
});
