import { Router } from 'express';
import { z } from 'zod';
import { resolveAssistantId } from '../../assistants/index.ts';
import { getRunWithOutput, listRuns } from '../../runs/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError, notFound, RUN_NOT_FOUND } from '../errors.ts';
import { documentRoutes, errors, json, pathId, queryLimit, queryOffset } from '../schemas/common.ts';
import { dateTime } from '../schemas/crons.ts';
import { RunSchema, RunStatus } from '../schemas/runs.ts';
import { parse } from '../validate.ts';

// Runs across threads and crons (an agentcron extension, issue 19): what is running, waiting and
// failing now, whatever thread or cron it belongs to, stateless runs included. A key sees its
// owner's runs; an admin key (and AUTH_MODE=none) sees everyone's, and may narrow to one owner.

const STATUSES = RunStatus.options;

export const RunsListQuery = z.object({
  status: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .refine((list) => list.length > 0 && list.every((x) => (STATUSES as readonly string[]).includes(x)), {
      message: `expected one or more of ${STATUSES.join(', ')}, separated by commas`,
    })
    .optional()
    .openapi({ description: 'One status or several separated by commas (running,pending)', example: 'error,timeout,interrupted' }),
  cron_id: z.uuid({ message: 'must be a UUID' }).optional(),
  assistant_id: z.string().min(1).optional().openapi({ description: 'An assistant id, or a graph id (its default assistant)' }),
  thread_id: z.uuid({ message: 'must be a UUID' }).optional(),
  created_after: dateTime.optional().openapi({ description: 'Runs created at or after this instant' }),
  created_before: dateTime.optional().openapi({ description: 'Runs created before this instant' }),
  user_id: z.string().min(1).optional().openapi({ description: "Admin keys: one owner's runs (absent: everyone's)" }),
  limit: queryLimit(50),
  offset: queryOffset,
});

export const ListedRunSchema = RunSchema.extend({ user_id: z.string().describe('The owner') }).openapi('ListedRun');
export const RunDetailSchema = ListedRunSchema.extend({
  output: z.unknown().describe("The run's final values once it ended with success (null before; a stateless run's go with it when its thread is deleted)"),
}).openapi('RunDetail');

const RunIdParams = z.object({ run_id: z.uuid() });

documentRoutes('runs', [
  {
    method: 'get',
    path: '/runs',
    summary: 'Runs across threads and crons, newest first (agentcron)',
    description:
      'Stateless, thread and cron runs alike, filtered by status, cron, assistant, thread and creation time, a page at a time (limit, offset). ' +
      "A key sees its owner's runs; an admin key sees everyone's (user_id narrows). A bad filter is a 422 naming it.",
    query: RunsListQuery,
    responses: { 200: json(z.array(ListedRunSchema), 'Runs, newest first'), ...errors(422) },
  },
  {
    method: 'get',
    path: '/runs/{run_id}',
    summary: 'Get a run by its id alone, with its output (agentcron)',
    description: 'Cancel it with POST /threads/{thread_id}/runs/{run_id}/cancel.',
    params: RunIdParams,
    responses: { 200: json(RunDetailSchema, 'The run'), ...errors(404) },
  },
]);

export function runListRoutes({ pool }: ApiDeps): Router {
  const router = Router();

  router.get('/runs', async (req, res) => {
    const q = parse(RunsListQuery, req.query, 'query');
    const admin = res.locals.admin === true;
    if (q.user_id !== undefined && !admin) throw new HttpError(422, "query.user_id: only an admin key lists another owner's runs");
    if (q.created_after && q.created_before && q.created_before.getTime() <= q.created_after.getTime()) {
      throw new HttpError(422, 'query.created_before: must be after created_after');
    }
    const runs = await listRuns(
      pool,
      {
        user_id: admin ? (q.user_id ?? null) : userOf(res),
        statuses: q.status ?? null,
        cron_id: q.cron_id ?? null,
        assistant_id: q.assistant_id !== undefined ? resolveAssistantId(q.assistant_id) : null,
        thread_id: q.thread_id ?? null,
        created_after: q.created_after ?? null,
        created_before: q.created_before ?? null,
      },
      { limit: q.limit, offset: q.offset },
    );
    res.json(runs);
  });

  // Only a UUID: /runs/crons, /runs/wait ... stay the other routes' (their 405s list no GET).
  router.get(/^\/runs\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i, async (req, res) => {
    const runId = pathId((req.params as unknown as string[])[0], RUN_NOT_FOUND);
    const run = await getRunWithOutput(pool, runId, res.locals.admin === true ? null : userOf(res));
    if (!run) throw notFound(RUN_NOT_FOUND);
    res.json(run);
  });

  return router;
}
