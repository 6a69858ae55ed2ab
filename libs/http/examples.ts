// Examples for /openapi.json and /docs: a request body for every route that takes one and the
// answers of the main routes, keyed "METHOD /path" as the document names them. Kept apart from
// the schemas (one place, added to the document as it is generated); test/api-openapi.test.ts
// parses each with the very zod schema its route validates or answers with.

const CRON_ID = '6f1c2b9e-3d4a-4e5f-8a7b-1c2d3e4f5a6b';
const RUN_ID = '1e0d2c3b-4a59-5687-9a1b-2c3d4e5f6a7b';
const THREAD_ID = '0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d';
const KEPT_THREAD_ID = '3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f';
const ASSISTANT_ID = '5f3e1a8c-2b4d-5c6e-8f7a-9b0c1d2e3f4a';

const cronCreate = {
  assistant_id: 'echo',
  schedule: 'CRON_TZ=Europe/Paris 0 9 * * 1-5',
  input: { topic: 'news' },
  metadata: { name: 'morning news', team: 'ops' },
  webhook: 'https://example.com/hooks/agentcron',
  overlap_policy: 'skip',
};

const cron = {
  cron_id: CRON_ID,
  assistant_id: ASSISTANT_ID,
  thread_id: null,
  on_run_completed: 'delete',
  end_time: null,
  schedule: '0 9 * * 1-5',
  timezone: 'Europe/Paris',
  created_at: '2030-01-07T08:15:00.000Z',
  updated_at: '2030-01-07T08:15:00.000Z',
  payload: { input: { topic: 'news' }, webhook: 'https://example.com/hooks/agentcron' },
  user_id: 'alice',
  next_run_date: '2030-01-08T08:00:00.000Z',
  metadata: { name: 'morning news', team: 'ops' },
  enabled: true,
  paused_reason: null,
  last_run_at: '2030-01-07T08:15:03.120Z',
  last_run_status: 'success',
  last_run_error: null,
  last_run_id: RUN_ID,
  finished_at: null,
  missed_policy: 'latest',
  overlap_policy: 'skip',
  jitter_seconds: 0,
};

const run = {
  run_id: RUN_ID,
  thread_id: THREAD_ID,
  assistant_id: ASSISTANT_ID,
  created_at: '2030-01-08T08:00:00.412Z',
  updated_at: '2030-01-08T08:00:00.412Z',
  status: 'pending',
  metadata: {},
  multitask_strategy: 'enqueue',
  kwargs: { input: { topic: 'news' } },
  cron_id: CRON_ID,
  scheduled_for: '2030-01-08T08:00:00.000Z',
  run_started_at: null,
  run_ended_at: null,
  error: null,
  webhook_sent_at: null,
  webhook_status: null,
  webhook_attempts: 0,
  webhook_error: null,
  attempts: 0,
  attempt_log: [],
  waiting: null,
  not_before: null,
};

/** A cron's run as the crons routes document it (CronRun: the Run fields without the webhook's bookkeeping). */
const { webhook_sent_at: _s, webhook_status: _t, webhook_attempts: _a, webhook_error: _e, ...cronRun } = run;

const endedRun = {
  ...run,
  status: 'error',
  attempts: 1,
  updated_at: '2030-01-08T08:00:04.950Z',
  run_started_at: '2030-01-08T08:00:00.530Z',
  run_ended_at: '2030-01-08T08:00:04.950Z',
  error: { error: 'RuntimeError', message: 'the model provider answered 503' },
};

const manualRun = { ...run, cron_id: null, scheduled_for: null, thread_id: KEPT_THREAD_ID, kwargs: { input: { question: 'What changed since yesterday?' } } };

const fireTimes = [
  { utc: '2030-01-08T08:00:00.000Z', local: '2030-01-08T09:00:00+01:00', dst: null, dst_note: null, planned_for: '2030-01-08T08:00:00.000Z' },
  { utc: '2030-01-09T08:00:00.000Z', local: '2030-01-09T09:00:00+01:00', dst: null, dst_note: null, planned_for: '2030-01-09T08:00:00.000Z' },
];

const occurrence = {
  cron_id: CRON_ID,
  scheduled_for: '2030-01-07T08:00:00.000Z',
  run_id: RUN_ID,
  thread_id: THREAD_ID,
  trigger: 'schedule',
  status: 'success',
  reason: null,
  error: null,
  skipped_count: 0,
  enqueued_at: '2030-01-07T08:00:00.180Z',
  started_at: '2030-01-07T08:00:00.450Z',
  ended_at: '2030-01-07T08:00:03.120Z',
  created_at: '2030-01-07T08:00:00.180Z',
  webhook_status: 'sent',
  webhook_attempts: 1,
  webhook_error: null,
  webhook_sent_at: '2030-01-07T08:00:03.300Z',
  output_excerpt: '{"summary":"3 new articles on agents"}',
  output_truncated: false,
  error_excerpt: null,
  error_truncated: false,
  retries: 0,
  retried_at: null,
  planned_for: '2030-01-07T08:00:00.000Z',
  attempts: 1,
  attempt_log: [],
  waiting: null,
  not_before: null,
};

const thread = {
  thread_id: KEPT_THREAD_ID,
  created_at: '2030-01-07T08:10:00.000Z',
  updated_at: '2030-01-07T08:10:00.000Z',
  state_updated_at: '2030-01-07T08:10:00.000Z',
  metadata: { project: 'digest' },
  status: 'idle',
  values: {},
  interrupts: {},
};

const assistant = {
  assistant_id: ASSISTANT_ID,
  graph_id: 'echo',
  name: 'Echo for the digest',
  description: 'Answers its input',
  config: {},
  context: {},
  metadata: { team: 'ops' },
  version: 1,
  created_at: '2030-01-07T08:00:00.000Z',
  updated_at: '2030-01-07T08:00:00.000Z',
};

const runCreate = { assistant_id: 'echo', input: { question: 'What changed since yesterday?' }, metadata: { source: 'docs' } };
const cronSearch = { metadata: { team: 'ops' }, enabled: true, sort_by: 'next_run_date', sort_order: 'asc', limit: 20, offset: 0 };
const cronUpdate = {
  schedule: '0 10 * * 1-5',
  metadata: { name: 'morning news', team: 'ops' },
  enabled: false,
  paused_reason: 'until the new model key arrives',
};

export interface OperationExamples {
  /** The request body. */
  body?: unknown;
  /** The 200 answer. */
  response?: unknown;
}

export const EXAMPLES: Record<string, OperationExamples> = {
  // ---- crons ----
  'POST /runs/crons': { body: cronCreate, response: { ...cronRun, scheduled_for: '2030-01-07T08:15:00.000Z' } },
  'POST /threads/{thread_id}/runs/crons': {
    body: { assistant_id: 'echo', schedule: '*/30 * * * *', input: { check: 'inbox' }, multitask_strategy: 'enqueue', metadata: { name: 'inbox watch' } },
  },
  'POST /runs/crons/search': { body: cronSearch, response: [cron] },
  'POST /runs/crons/count': { body: { metadata: { team: 'ops' } }, response: 3 },
  'GET /runs/crons/{cron_id}': { response: cron },
  'PATCH /runs/crons/{cron_id}': {
    body: cronUpdate,
    response: {
      ...cron,
      schedule: '0 10 * * 1-5',
      enabled: false,
      paused_reason: 'until the new model key arrives',
      next_run_date: '2030-01-08T09:00:00.000Z',
    },
  },
  'POST /runs/crons/{cron_id}/trigger': {
    response: { ...cronRun, scheduled_for: '2030-01-07T10:42:17.000Z', created_at: '2030-01-07T10:42:17.000Z', updated_at: '2030-01-07T10:42:17.000Z' },
  },
  'GET /runs/crons/{cron_id}/occurrences': {
    response: [
      occurrence,
      {
        ...occurrence,
        scheduled_for: '2030-01-06T08:00:00.000Z',
        status: 'skipped',
        reason: 'missed',
        run_id: null,
        thread_id: null,
        enqueued_at: null,
        started_at: null,
        ended_at: null,
        webhook_status: null,
        webhook_attempts: 0,
        webhook_sent_at: null,
        output_excerpt: null,
      },
    ],
  },
  'GET /runs/crons/{cron_id}/next': {
    response: {
      cron_id: CRON_ID,
      schedule: '0 9 * * 1-5',
      timezone: 'Europe/Paris',
      description: 'At 09:00, Monday through Friday',
      enabled: true,
      jitter_seconds: 0,
      next: fireTimes,
    },
  },
  'POST /runs/crons/preview': {
    body: { schedule: '30 2 * * *', timezone: 'America/New_York', from: '2030-03-08T12:00:00Z', count: 3 },
    response: {
      schedule: '30 2 * * *',
      timezone: 'America/New_York',
      description: 'At 02:30',
      from: '2030-03-08T12:00:00.000Z',
      jitter_seconds: 0,
      next: [
        { utc: '2030-03-09T07:30:00.000Z', local: '2030-03-09T02:30:00-05:00', dst: null, dst_note: null, planned_for: '2030-03-09T07:30:00.000Z' },
        {
          utc: '2030-03-10T07:00:00.000Z',
          local: '2030-03-10T03:00:00-04:00',
          dst: 'skipped',
          dst_note: '02:30 does not exist on 2030-03-10 (clocks go forward): fires at 03:00, the first instant after the gap',
          planned_for: '2030-03-10T07:00:00.000Z',
        },
        { utc: '2030-03-11T06:30:00.000Z', local: '2030-03-11T02:30:00-04:00', dst: null, dst_note: null, planned_for: '2030-03-11T06:30:00.000Z' },
      ],
    },
  },
  'POST /runs/crons/{cron_id}/backfill': {
    body: { from: '2030-01-01T00:00:00Z', to: '2030-01-05T23:59:59Z', overlap: 'allow' },
    response: {
      cron_id: CRON_ID,
      from: '2030-01-01T00:00:00.000Z',
      to: '2030-01-05T23:59:59.000Z',
      occurrences: 3,
      fired: 2,
      skipped_existing: 1,
      skipped_overlap: 0,
    },
  },
  'POST /runs/crons/{cron_id}/occurrences/{scheduled_for}/retry': { response: { ...cronRun, scheduled_for: '2030-01-07T08:00:00.000Z', retries: 1 } },
  'POST /runs/crons/bulk': {
    body: { action: 'disable', metadata: { team: 'ops' }, paused_reason: 'maintenance window' },
    response: { action: 'disable', count: 3 },
  },

  // ---- runs ----
  'GET /runs': {
    response: [
      { ...endedRun, user_id: 'alice' },
      { ...manualRun, user_id: 'alice' },
    ],
  },
  'GET /runs/{run_id}': { response: { ...endedRun, status: 'success', error: null, user_id: 'alice', output: { summary: '3 new articles on agents' } } },
  'POST /runs': { body: runCreate, response: { ...manualRun } },
  'POST /runs/batch': { body: [runCreate, { assistant_id: 'echo', input: { question: 'And last week?' } }] },
  'POST /runs/wait': { body: runCreate },
  'POST /runs/stream': { body: { ...runCreate, stream_mode: ['values', 'updates'] } },
  'POST /threads/{thread_id}/runs': { body: { ...runCreate, multitask_strategy: 'enqueue' }, response: manualRun },
  'POST /threads/{thread_id}/runs/wait': { body: runCreate },
  'POST /threads/{thread_id}/runs/stream': { body: { ...runCreate, stream_mode: 'values' } },
  'GET /threads/{thread_id}/runs/{run_id}': { response: manualRun },

  // ---- threads ----
  'POST /threads': { body: { metadata: { project: 'digest' } }, response: thread },
  'POST /threads/search': { body: { metadata: { project: 'digest' }, status: 'idle', limit: 10 }, response: [thread] },
  'POST /threads/count': { body: { status: 'busy' }, response: 2 },
  'PATCH /threads/{thread_id}': { body: { metadata: { project: 'digest', owner: 'ops' } } },
  'POST /threads/{thread_id}/history': { body: { limit: 5 } },
  'GET /threads/{thread_id}': { response: thread },

  // ---- assistants ----
  'POST /assistants': {
    body: { graph_id: 'echo', name: 'Echo for the digest', description: 'Answers its input', metadata: { team: 'ops' } },
    response: assistant,
  },
  'POST /assistants/search': { body: { graph_id: 'echo', limit: 10 }, response: [assistant] },
  'POST /assistants/count': { body: { graph_id: 'echo' }, response: 1 },
  'PATCH /assistants/{assistant_id}': { body: { name: 'Echo (digest)', config: { configurable: { tone: 'brief' } } } },

  // ---- admin ----
  'POST /admin/crons/search': { body: { ...cronSearch, user_id: 'alice' }, response: [cron] },
  'POST /admin/crons/count': { body: { user_id: 'alice', enabled: false } },
  'POST /admin/crons/bulk': { body: { action: 'enable', user_id: 'alice', all: true } },
  'POST /admin/crons/transfer': { body: { from_user_id: 'anonymous', to_user_id: 'alice', assistants: true } },
  'PATCH /admin/crons/{cron_id}': { body: cronUpdate },
};

/** The document with the examples: each request body's and 200 answer's JSON content gets its `example`. */
export function withExamples<T extends { paths?: Record<string, Record<string, any>> }>(doc: T): T {
  for (const [key, ex] of Object.entries(EXAMPLES)) {
    const [method, path] = key.split(' ');
    const op = doc.paths?.[path]?.[method.toLowerCase()];
    if (!op) continue;
    const body = op.requestBody?.content?.['application/json'];
    if (body && ex.body !== undefined) body.example = ex.body;
    const ok = op.responses?.['200']?.content?.['application/json'];
    if (ok && ex.response !== undefined) ok.example = ex.response;
  }
  return doc;
}
