import { z } from 'zod';
import { registry } from '../openapi.ts';
import { ErrorSchema, errors, json } from '../schemas/common.ts';
import {
  BackfillBody,
  CronBulkAnswer,
  CronBulkBody,
  CronCountBody,
  CronCreateBody,
  CronIdParams,
  CronSearchBody,
  CronUpdateBody,
  NextQuery,
  OccurrenceParams,
  OccurrencesQuery,
  PreviewBody,
  RECENT_OCCURRENCES_MAX,
  RecentOccurrencesQuery,
  ThreadIdParams,
} from '../schemas/crons.ts';
import { BackfillSchema, CronRunSchema, CronSchema, NextRunsSchema, OccurrenceSchema, PreviewSchema, RetrySchema } from '../schemas/cron-answers.ts';

// The crons routes' OpenAPI registrations (GET /openapi.json, /docs), beside the routes they document.

// Every API route accepts the key as x-api-key (what the SDK sends) or as a bearer token.
const security: { [scheme: string]: string[] }[] = [{ ApiKey: [] }, { Bearer: [] }];
const createAnswer = json(
  z.union([CronRunSchema, CronSchema]),
  'The first Run (with cron_id); or the Cron when enabled is false, or when a thread cron with multitask_strategy reject finds its thread busy ' +
    '(its first occurrence is then recorded as skipped, reason overlap)',
);
const tooMany = { 429: json(ErrorSchema, 'CRON_MAX_PER_USER reached') };

registry.registerPath({
  method: 'post',
  path: '/runs/crons',
  summary: 'Create a stateless cron (a fresh thread per occurrence); its first run starts at once',
  tags: ['crons'],
  security,
  request: { body: json(CronCreateBody, 'The cron') },
  responses: { 200: createAnswer, ...errors(404, 422), ...tooMany },
});
registry.registerPath({
  method: 'post',
  path: '/threads/{thread_id}/runs/crons',
  summary: 'Create a cron on a thread; its first run starts at once',
  tags: ['crons'],
  security,
  request: { params: ThreadIdParams, body: json(CronCreateBody, 'The cron') },
  responses: { 200: createAnswer, ...errors(404, 422), ...tooMany },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/search',
  summary: 'Search crons',
  tags: ['crons'],
  security,
  request: { body: json(CronSearchBody, 'Filters, sort, select, limit and offset') },
  responses: { 200: json(z.array(CronSchema), 'Crons (reduced to the selected fields)'), ...errors(422) },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/count',
  summary: 'Count crons',
  tags: ['crons'],
  security,
  request: { body: json(CronCountBody, 'Filters') },
  responses: { 200: json(z.number().int(), 'A bare integer'), ...errors(422) },
});
registry.registerPath({
  method: 'get',
  path: '/runs/crons/{cron_id}',
  summary: 'Get a cron',
  tags: ['crons'],
  security,
  request: { params: CronIdParams },
  responses: { 200: json(CronSchema, 'The cron'), ...errors(404) },
});
registry.registerPath({
  method: 'patch',
  path: '/runs/crons/{cron_id}',
  summary: 'Update a cron: fields not sent stay; metadata is replaced; payload fields merge',
  tags: ['crons'],
  security,
  request: { params: CronIdParams, body: json(CronUpdateBody, 'The changes') },
  responses: { 200: json(CronSchema, 'The updated cron'), ...errors(404, 422) },
});
registry.registerPath({
  method: 'delete',
  path: '/runs/crons/{cron_id}',
  summary: 'Delete a cron (runs already started finish)',
  tags: ['crons'],
  security,
  request: { params: CronIdParams },
  responses: { 204: { description: 'Deleted' }, ...errors(404) },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/{cron_id}/trigger',
  summary: 'Run a cron now (outside its schedule)',
  description:
    'Under the same overlap rules as a scheduled occurrence: a thread cron with multitask_strategy interrupt or rollback stops the runs going on its thread; ' +
    'one with reject, or a stateless cron whose overlap_policy (skip, buffer_one) does not allow another run now, answers 409.',
  tags: ['crons'],
  security,
  request: { params: CronIdParams },
  responses: { 200: json(CronRunSchema, 'The run started'), ...errors(404, 409) },
});
registry.registerPath({
  method: 'get',
  path: '/runs/crons/occurrences',
  summary: "The caller's occurrences across its crons since an instant, newest first (agentcron)",
  description:
    `Every ledger row of the caller's crons scheduled at or after scheduled_after, as each cron's ledger shows it, at most limit ` +
    `(1-${RECENT_OCCURRENCES_MAX}).`,
  tags: ['crons'],
  security,
  request: { query: RecentOccurrencesQuery },
  responses: { 200: json(z.array(OccurrenceSchema), 'Occurrences, newest first'), ...errors(422) },
});
registry.registerPath({
  method: 'get',
  path: '/runs/crons/{cron_id}/occurrences',
  summary: "A cron's occurrence ledger, newest first: every occurrence fired or skipped, with why",
  tags: ['crons'],
  security,
  request: { params: CronIdParams, query: OccurrencesQuery },
  responses: { 200: json(z.array(OccurrenceSchema), 'Occurrences'), ...errors(404, 422) },
});
registry.registerPath({
  method: 'get',
  path: '/runs/crons/{cron_id}/next',
  summary: 'The next fire times of a cron, in UTC and in its timezone (DST cases marked); for a disabled cron, what it would fire if enabled',
  tags: ['crons'],
  security,
  request: { params: CronIdParams, query: NextQuery },
  responses: { 200: json(NextRunsSchema, 'Next fire times (none once the cron has finished)'), ...errors(404, 422) },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/preview',
  summary: "A schedule's next fire times and description, without creating a cron",
  description:
    'The same rules and 422s as create (schedule, timezone, 6-field schedules only with CRON_ALLOW_SECONDS_SCHEDULE). Each fire time is given ' +
    'in UTC and as wall time in the timezone, with the DST cases marked.',
  tags: ['crons'],
  security,
  request: { body: json(PreviewBody, 'The schedule') },
  responses: { 200: json(PreviewSchema, 'Fire times'), ...errors(422) },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/{cron_id}/backfill',
  summary: "Fire every occurrence of the cron's schedule in a past range, each once",
  description:
    'Also before the cron was created. An occurrence already in the ledger is not fired again; the overlap rules apply as for a trigger ' +
    '(held-back occurrences are counted, not recorded). ' +
    'Recorded in the ledger with trigger backfill; next_run_date is not moved. More occurrences than CRON_BACKFILL_MAX: 422 with the count.',
  tags: ['crons'],
  security,
  request: { params: CronIdParams, body: json(BackfillBody, 'The range') },
  responses: { 200: json(BackfillSchema, 'What was fired'), ...errors(404, 422) },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/{cron_id}/occurrences/{scheduled_for}/retry',
  summary: 'Run an occurrence that ended error, timeout or interrupted again',
  description:
    'A new attempt of the same occurrence: its run has the same cron_id and scheduled_for (so the agent gets the same idempotency_key) and ' +
    'replaces the run of the attempt before. ' +
    'The ledger row goes back to enqueued with retries + 1. 409 for an occurrence in another state, or when the overlap rules hold the run back now.',
  tags: ['crons'],
  security,
  request: { params: OccurrenceParams },
  responses: { 200: json(RetrySchema, 'The new run'), ...errors(404, 409, 422) },
});
registry.registerPath({
  method: 'post',
  path: '/runs/crons/bulk',
  summary: 'Disable, enable or delete every cron of the caller matching a filter; answers the count',
  description:
    'Filters: assistant_id, thread_id, enabled, metadata (at least one, or "all": true). One transaction: the crons are locked in cron_id order; ' +
    'enable follows PATCH {"enabled": true}; delete removes their occurrence ledgers too (runs already started finish).',
  tags: ['crons'],
  security,
  request: { body: json(CronBulkBody, 'The action and the filters') },
  responses: { 200: json(CronBulkAnswer, 'What was done'), ...errors(422) },
});
