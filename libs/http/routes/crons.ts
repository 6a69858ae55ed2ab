import { Router } from 'express';
import type { Request, Response } from 'express';
import {
  assistantKey,
  bulkScope,
  countCrons,
  cronOccurrences,
  cronOperations,
  nextFireTimes,
  previewSchedule,
  recentOccurrences,
  searchCrons,
  selectedCronFields,
} from '../../crons/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { CRON_NOT_FOUND, methodNotAllowed, THREAD_NOT_FOUND } from '../errors.ts';
import {
  BackfillBody,
  CronBulkBody,
  CronCountBody,
  CronCreateBody,
  CronSearchBody,
  CronUpdateBody,
  NextQuery,
  OccurrencePath,
  OccurrencesQuery,
  PreviewBody,
  RecentOccurrencesQuery,
} from '../schemas/crons.ts';
import { parse } from '../validate.ts';
import { checkBodySize, pathId, sendCreated, sendRun } from './cron-http.ts';
// Registers the crons routes' OpenAPI paths.
import './cron-docs.ts';

// The crons API: the LangGraph SDK's create/createForThread/search/count/update/delete, plus get,
// trigger (run now), the occurrence ledger and the next fire times. Every cron is read and written
// as its owner's; someone else's cron is "not found", exactly like a missing one. Each route maps
// its request to libs/crons and its answer back (a refusal's status: libs/http/errors.ts).

/** POST-only routes answer other methods 405 with Allow (not "Cron not found" from GET /runs/crons/{cron_id}). */
const postOnly: (req: Request, res: Response) => never = (req, res) => {
  throw methodNotAllowed(res, req.method, req.path, ['POST']);
};

export function cronsRoutes(deps: ApiDeps): Router {
  const { pool, config } = deps;
  const ops = cronOperations(deps);
  const router = Router();

  /** A create: the body's size and shape here, the rest libs/crons'. */
  const create = async (req: Request, res: Response, threadId: string | null) => {
    checkBodySize(req, config);
    sendCreated(res, await ops.create(userOf(res), threadId, parse(CronCreateBody, req.body)));
  };

  router.post('/runs/crons', (req, res) => create(req, res, null));

  router.post('/threads/:thread_id/runs/crons', (req, res) => create(req, res, pathId(req, 'thread_id', THREAD_NOT_FOUND)));

  router.post('/runs/crons/search', async (req, res) => {
    const q = parse(CronSearchBody, req.body);
    const { crons, now } = await searchCrons(pool, userOf(res), {
      assistant_id: q.assistant_id != null ? assistantKey(q.assistant_id) : null,
      thread_id: q.thread_id,
      enabled: q.enabled,
      metadata: q.metadata,
      cron_id_prefix: q.cron_id_prefix,
      sort_by: q.sort_by,
      sort_order: q.sort_order,
      limit: q.limit,
      offset: q.offset,
    });
    res.json(crons.map((c) => selectedCronFields(c, q.select, now)));
  });

  router.post('/runs/crons/count', async (req, res) => {
    const q = parse(CronCountBody, req.body);
    const n = await countCrons(pool, userOf(res), {
      assistant_id: q.assistant_id != null ? assistantKey(q.assistant_id) : null,
      thread_id: q.thread_id,
      enabled: q.enabled,
      metadata: q.metadata,
    });
    res.json(n);
  });

  router.post('/runs/crons/bulk', async (req, res) => {
    const body = parse(CronBulkBody, req.body);
    res.json(await ops.bulk(bulkScope(body, userOf(res)), body.action, body.paused_reason ?? null));
  });

  router.post('/runs/crons/preview', async (req, res) => {
    res.json(await previewSchedule(pool, parse(PreviewBody, req.body), config.CRON_ALLOW_SECONDS_SCHEDULE));
  });

  router.all(['/runs/crons/search', '/runs/crons/count', '/runs/crons/bulk', '/runs/crons/preview'], postOnly);

  router.get('/runs/crons/occurrences', async (req, res) => {
    const { scheduled_after, limit } = parse(RecentOccurrencesQuery, req.query, 'query');
    res.json(await recentOccurrences(pool, userOf(res), scheduled_after, limit));
  });

  router.all('/runs/crons/occurrences', (req, res) => {
    throw methodNotAllowed(res, req.method, req.path, ['GET']);
  });

  router.get('/runs/crons/:cron_id', async (req, res) => {
    res.json(await ops.get(pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.patch('/runs/crons/:cron_id', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    checkBodySize(req, config);
    res.json(await ops.update(cronId, userOf(res), parse(CronUpdateBody, req.body)));
  });

  router.delete('/runs/crons/:cron_id', async (req, res) => {
    await ops.remove(pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res));
    res.status(204).end();
  });

  router.post('/runs/crons/:cron_id/trigger', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    sendRun(res, await ops.trigger(cronId, userOf(res)), cronId);
  });

  router.get('/runs/crons/:cron_id/occurrences', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { limit, offset } = parse(OccurrencesQuery, req.query, 'query');
    res.json(await cronOccurrences(pool, cronId, userOf(res), limit, offset));
  });

  router.get('/runs/crons/:cron_id/next', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    res.json(await nextFireTimes(pool, cronId, userOf(res), parse(NextQuery, req.query, 'query')));
  });

  router.post('/runs/crons/:cron_id/backfill', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    res.json(await ops.backfill(cronId, userOf(res), parse(BackfillBody, req.body)));
  });

  router.post('/runs/crons/:cron_id/occurrences/:scheduled_for/retry', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { scheduled_for } = parse(OccurrencePath, { scheduled_for: req.params.scheduled_for }, 'path');
    const { run, retries } = await ops.retry(cronId, userOf(res), scheduled_for);
    sendRun(res, run, cronId, { retries });
  });

  return router;
}
