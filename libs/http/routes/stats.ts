import { Router } from 'express';
import type { Response } from 'express';
import { z } from 'zod';
import { getAssistant } from '../../assistants/index.ts';
import { getCron } from '../../crons/index.ts';
import { isUuid } from '../../ids/index.ts';
import { DAILY_TOTAL_FIELDS, readDailyStats } from '../../maintenance/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { ASSISTANT_NOT_FOUND, CRON_NOT_FOUND, HttpError, notFound } from '../errors.ts';
import { registry } from '../openapi.ts';
import { ErrorSchema, documentRoutes, errors, json } from '../schemas/common.ts';
import { parse } from '../validate.ts';

// The daily statistics the daily_stats maintenance job writes (run_daily_stats), per cron and per
// assistant, for the caller's own crons and assistants: someone else's is "not found", exactly like
// a missing one. A graph's default assistant belongs to nobody and its figures count every user's
// runs, so only an admin key reads them.

export const StatsQuery = z.object({
  days: z.coerce.number().int().min(1).max(366).default(7).openapi({ description: 'How many days, ending today (in MAINTENANCE_TIMEZONE); default 7' }),
});

const DayStats = registry.register(
  'DayStats',
  z.object({
    day: z.string().openapi({ format: 'date', description: 'The day, in `timezone`' }),
    timezone: z.string().openapi({ description: 'The zone the day was cut in (MAINTENANCE_TIMEZONE when it was computed)' }),
    runs: z.number().int().describe('Occurrences that fired, plus (assistants) runs no cron started'),
    successes: z.number().int(),
    failures: z.number().int(),
    timeouts: z.number().int(),
    interrupted: z.number().int(),
    skipped: z.number().int().describe('Occurrences not fired (missed, overlap, end_time)'),
    p50_duration_ms: z.number().nullable(),
    p95_duration_ms: z.number().nullable(),
    p95_fire_lag_ms: z.number().nullable().describe('Enqueue time minus scheduled time, scheduled occurrences only'),
    computed_at: z.string().openapi({ format: 'date-time', description: 'When daily_stats last computed this day (today is recomputed as it goes)' }),
  }),
);

const statsAnswer = (idField: 'cron_id' | 'assistant_id') =>
  z.object({
    [idField]: z.string(),
    timezone: z.string(),
    from: z.string().openapi({ format: 'date', description: 'First day of the period' }),
    to: z.string().openapi({ format: 'date', description: 'Today' }),
    days: z.array(DayStats).describe('The days daily_stats computed, newest first; a day it did not compute is absent'),
    totals: z.object(Object.fromEntries(DAILY_TOTAL_FIELDS.map((f) => [f, z.number().int()]))).describe('Sums over the days listed'),
  });

const CronStats = registry.register('CronStats', statsAnswer('cron_id'));
const AssistantStats = registry.register('AssistantStats', statsAnswer('assistant_id'));

documentRoutes('stats', [
  {
    method: 'get',
    path: '/runs/crons/{cron_id}/stats',
    summary: "A cron's daily statistics: runs, outcomes, skips, p50/p95 duration, p95 fire lag",
    description:
      'Computed by the daily_stats maintenance job (yesterday and today, a few times a day; `POST /admin/maintenance/daily_stats/trigger` runs it now).',
    params: z.object({ cron_id: z.string() }),
    query: StatsQuery,
    responses: { 200: json(CronStats), ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/assistants/{assistant_id}/stats',
    summary: "An assistant's daily statistics: its crons' occurrences plus its runs no cron started",
    description: "A graph id names that graph's default assistant, whose figures count every user's runs: only an admin key reads them (403 otherwise).",
    params: z.object({ assistant_id: z.string() }),
    query: StatsQuery,
    responses: {
      200: json(AssistantStats),
      ...errors(404, 422),
      403: json(ErrorSchema, "A graph's default assistant: its figures count every user's runs (admin keys only)."),
    },
  },
]);

const isAdmin = (res: Response): boolean => res.locals.admin === true;

export function statsRoutes({ pool, config }: ApiDeps): Router {
  const router = Router();
  const timezone = config.MAINTENANCE_TIMEZONE;

  router.get('/runs/crons/:cron_id/stats', async (req, res) => {
    const cronId = req.params.cron_id;
    // Anything but a UUID names no cron: 404 (never a database error).
    if (!isUuid(cronId)) throw notFound(CRON_NOT_FOUND);
    const { days } = parse(StatsQuery, req.query, 'query');
    const cron = await getCron(pool, cronId, userOf(res));
    if (!cron) throw notFound(CRON_NOT_FOUND);
    res.json({ cron_id: cron.cron_id, ...(await readDailyStats(pool, 'cron', cron.cron_id, timezone, days)) });
  });

  router.get('/assistants/:assistant_id/stats', async (req, res) => {
    const { days } = parse(StatsQuery, req.query, 'query');
    const found = await getAssistant(pool, req.params.assistant_id, userOf(res));
    if (!found) throw notFound(ASSISTANT_NOT_FOUND);
    if (found.system && !isAdmin(res)) {
      throw new HttpError(
        403,
        `${found.assistant.assistant_id} is the default assistant of graph ${found.assistant.graph_id}: its figures count every user's runs, ` +
          `so only an admin key reads them; create an assistant of your own for figures of your own`,
      );
    }
    const id = found.assistant.assistant_id;
    res.json({ assistant_id: id, ...(await readDailyStats(pool, 'assistant', id, timezone, days)) });
  });

  return router;
}
