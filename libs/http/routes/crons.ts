import { Router } from 'express';
import type { Request, Response } from 'express';
import { describeSchedule, fireTimes, upcomingTimes } from '../../crons/index.ts';
import { countCrons, getCron, listOccurrences, searchCrons, toOccurrenceResponse, statementNow } from '../../crons/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { CRON_NOT_FOUND, methodNotAllowed, notFound, THREAD_NOT_FOUND } from '../errors.ts';
import { CronBulkBody, CronCountBody, CronSearchBody, NextQuery, OccurrencePath, OccurrencesQuery, PreviewBody } from '../schemas/crons.ts';
import { parse } from '../validate.ts';
import { assistantKey, canonicalTimezone, pathId, scheduleOf, zonedSchedule } from './cron-input.ts';
import { answerClock, selectedCronFields, shownNextRunDate } from './cron-answers.ts';
import { bulkScope, createCron, cronOperations } from './cron-operations.ts';
// Registers the crons routes' OpenAPI paths.
import './cron-docs.ts';

// The crons API: the LangGraph SDK's create/createForThread/search/count/update/delete, plus get,
// trigger (run now), the occurrence ledger and the next fire times. Every cron is read and written
// as its owner's; someone else's cron is "not found", exactly like a missing one.

/** POST-only routes answer other methods 405 with Allow (not "Cron not found" from GET /runs/crons/{cron_id}). */
const postOnly: (req: Request, res: Response) => never = (req, res) => {
  throw methodNotAllowed(res, req.method, req.path, ['POST']);
};

export function cronsRoutes(deps: ApiDeps): Router {
  const { pool, config } = deps;
  const ops = cronOperations(deps);
  const router = Router();

  router.post('/runs/crons', (req, res) => createCron(deps, req, res, null));

  router.post('/threads/:thread_id/runs/crons', (req, res) => createCron(deps, req, res, pathId(req, 'thread_id', THREAD_NOT_FOUND)));

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
    const body = { ...parse(PreviewBody, req.body) };
    ({ schedule: body.schedule, timezone: body.timezone } = zonedSchedule(body.schedule, body.timezone));
    const schedule = scheduleOf(body.schedule, canonicalTimezone(body.timezone ?? null), config.CRON_ALLOW_SECONDS_SCHEDULE);
    const from = body.from ?? (await statementNow(pool));
    const times = upcomingTimes(schedule, { after: from, count: body.count });
    const jitter = body.jitter_seconds ?? 0;
    res.json({
      schedule: schedule.expression,
      timezone: schedule.timezone,
      description: describeSchedule(schedule.expression),
      from: from.toISOString(),
      jitter_seconds: jitter,
      next: fireTimes(schedule, times, { cron_id: null, jitter_seconds: jitter }),
    });
  });

  router.all(['/runs/crons/search', '/runs/crons/count', '/runs/crons/bulk', '/runs/crons/preview'], postOnly);

  router.get('/runs/crons/:cron_id', async (req, res) => {
    res.json(await ops.get(pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.patch('/runs/crons/:cron_id', async (req, res) => {
    res.json(await ops.update(req, pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.delete('/runs/crons/:cron_id', async (req, res) => {
    await ops.remove(pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res));
    res.status(204).end();
  });

  router.post('/runs/crons/:cron_id/trigger', async (req, res) => {
    await ops.trigger(res, pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res));
  });

  router.get('/runs/crons/:cron_id/occurrences', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { limit, offset } = parse(OccurrencesQuery, req.query, 'query');
    if (!(await getCron(pool, cronId, userOf(res)))) throw notFound(CRON_NOT_FOUND);
    const rows = await listOccurrences(pool, cronId, limit, offset);
    res.json(rows.map(toOccurrenceResponse));
  });

  router.get('/runs/crons/:cron_id/next', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { count, from } = parse(NextQuery, req.query, 'query');
    const cron = await getCron(pool, cronId, userOf(res));
    if (!cron) throw notFound(CRON_NOT_FOUND);
    const schedule = scheduleOf(cron.schedule, cron.timezone, true);
    // From the next fire: the stored next_run_date, or for a disabled cron what enabling it now
    // would set (null once finished: it fires nothing more).
    const first = shownNextRunDate(cron, await answerClock(pool, cron));
    const times = first === null ? [] : upcomingTimes(schedule, { first, after: from ?? null, count, endTime: cron.end_time });
    res.json({
      cron_id: cron.cron_id,
      schedule: cron.schedule,
      timezone: schedule.timezone,
      description: describeSchedule(cron.schedule),
      enabled: cron.enabled,
      jitter_seconds: cron.jitter_seconds,
      next: fireTimes(schedule, times, { cron_id: cron.cron_id, jitter_seconds: cron.jitter_seconds }),
    });
  });

  router.post('/runs/crons/:cron_id/backfill', async (req, res) => {
    res.json(await ops.backfill(req, pathId(req, 'cron_id', CRON_NOT_FOUND), userOf(res)));
  });

  router.post('/runs/crons/:cron_id/occurrences/:scheduled_for/retry', async (req, res) => {
    const cronId = pathId(req, 'cron_id', CRON_NOT_FOUND);
    const { scheduled_for } = parse(OccurrencePath, { scheduled_for: req.params.scheduled_for }, 'path');
    await ops.retry(res, cronId, userOf(res), scheduled_for);
  });

  return router;
}
