import { z } from 'zod';
import { registry } from '../openapi.ts';
import { ATTEMPT_FIELDS, Metadata, WEBHOOK_DESCRIPTION, queryLimit, queryOffset, selectFields, webhookUrl } from './common.ts';
import { STREAM_MODES } from '../stream.ts';

export const RunStatus = z.enum(['pending', 'running', 'error', 'success', 'timeout', 'interrupted']);
export const MultitaskStrategy = z.enum(['reject', 'enqueue', 'interrupt', 'rollback']);

const iso = z.iso.datetime();

export const RunSchema = registry.register(
  'Run',
  z.object({
    run_id: z.uuid(),
    thread_id: z.uuid(),
    assistant_id: z.uuid(),
    created_at: iso,
    updated_at: iso,
    status: RunStatus,
    metadata: Metadata,
    multitask_strategy: MultitaskStrategy,
    kwargs: Metadata.describe('The run body: input, config, context, webhook ...'),
    cron_id: z.uuid().nullable().describe('The cron that started the run (null for a manual run).'),
    scheduled_for: iso.nullable().describe('The cron occurrence the run is for.'),
    run_started_at: iso.nullable(),
    run_ended_at: iso.nullable(),
    error: z.object({ error: z.string(), message: z.string() }).nullable(),
    webhook_sent_at: iso.nullable().describe('When the webhook was delivered.'),
    webhook_status: z.enum(['pending', 'sent', 'failed']).nullable().describe('null when the run has no webhook.'),
    webhook_attempts: z.number().int(),
    webhook_error: z.string().nullable().describe('Why the last delivery attempt failed (at most a short excerpt of the answer).'),
    ...ATTEMPT_FIELDS,
  }),
);

/** The longest a background run may be deferred (after_seconds): 366 days. */
const MAX_AFTER_SECONDS = 366 * 86400;

const interruptAt = z.union([z.literal('*'), z.array(z.string())]);

/** Stored in the run's kwargs as sent; agentcron's built-in agents do not read them. */
const passedThrough = {
  command: z.unknown().optional(),
  interrupt_before: interruptAt.nullish(),
  interrupt_after: interruptAt.nullish(),
  stream_subgraphs: z.unknown().optional(),
  stream_resumable: z.unknown().optional(),
  checkpoint: z.unknown().optional(),
  checkpoint_id: z.unknown().optional(),
  checkpoint_during: z.unknown().optional(),
  durability: z.unknown().optional(),
  feedback_keys: z.unknown().optional(),
};

/** A stream mode, or a list of them (LangGraph's names; see libs/http/stream.ts for what each sends). */
export const StreamMode = z.enum(STREAM_MODES);
const streamModeField = z
  .union([StreamMode, z.array(StreamMode)])
  .nullish()
  .describe(
    'What the stream sends (runs/stream): values (default), updates; the token modes (messages, events, custom, debug ...) are accepted and send nothing.',
  );

export const RunCreate = registry.register(
  'RunCreate',
  z.object({
    assistant_id: z.string({ error: 'required' }).min(1).describe('An assistant id, or a graph id (its default assistant).'),
    input: z.unknown().optional().describe("The agent's input."),
    config: Metadata.nullish(),
    context: Metadata.nullish(),
    metadata: Metadata.nullish(),
    webhook: webhookUrl.nullish().describe(WEBHOOK_DESCRIPTION),
    multitask_strategy: MultitaskStrategy.nullish().describe(
      'When the thread has a run that has not ended: reject (409), enqueue (default: run after it), interrupt (cancel it), rollback (cancel and delete it).',
    ),
    if_not_exists: z.enum(['create', 'reject']).nullish().describe('A missing thread: create it (for the caller) or 404 (default).'),
    after_seconds: z
      .number()
      .min(0)
      .max(MAX_AFTER_SECONDS)
      .nullish()
      .describe(`Start the run no sooner than this many seconds after it is created (at most ${MAX_AFTER_SECONDS}, 366 days); it stays pending until then.`),
    stream_mode: streamModeField,
    on_completion: z
      .enum(['delete', 'keep'])
      .nullish()
      .describe('Stateless runs (POST /runs, /runs/wait, /runs/stream): delete (default) the fresh thread once the run ends, or keep it.'),
    on_disconnect: z
      .enum(['cancel', 'continue'])
      .nullish()
      .describe('/runs/wait and /runs/stream: when the client goes away, cancel the run or let it continue (default).'),
    ...passedThrough,
  }),
);

export const RunBatchCreate = registry.register('RunBatchCreate', z.array(RunCreate).min(1).max(100));

export const RUN_SELECT = [
  'run_id',
  'thread_id',
  'assistant_id',
  'created_at',
  'updated_at',
  'status',
  'metadata',
  'kwargs',
  'multitask_strategy',
  'cron_id',
  'scheduled_for',
  'run_started_at',
  'run_ended_at',
  'error',
  'webhook_sent_at',
  'webhook_status',
  'webhook_attempts',
  'webhook_error',
  'attempts',
  'attempt_log',
  'waiting',
  'not_before',
] as const;

export const RunListQuery = z.object({
  limit: queryLimit(10),
  offset: queryOffset,
  status: RunStatus.optional(),
  select: selectFields(RUN_SELECT).optional(),
});

const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

export const CancelQuery = z.object({
  wait: flag.optional().describe('1: answer 204 once the run has ended; 0 (default): answer 202 at once.'),
  action: z.enum(['interrupt', 'rollback']).default('interrupt').describe('rollback also deletes the run.'),
});

/** Query of GET .../runs/{run_id}/stream: the 1.x SDK repeats stream_mode, 2.0 sends one JSON text for a list. */
export const JoinStreamQuery = z.object({
  cancel_on_disconnect: flag.optional().describe('1: cancel the run when this client goes away.'),
  stream_mode: z
    .preprocess(
      (v) => {
        if (typeof v !== 'string') return v;
        if (v.trim().startsWith('[')) {
          try {
            return JSON.parse(v) as unknown;
          } catch {
            return v;
          }
        }
        return v;
      },
      z.union([StreamMode, z.array(StreamMode)]),
    )
    .optional()
    .describe('Modes to send; default the modes the run was created with, else values.'),
});

export const JoinAnswer = registry.register(
  'JoinAnswer',
  z.unknown().describe('The thread\'s values once the run has ended; `{"__error__": {error, message}}` when it failed or timed out.'),
);
