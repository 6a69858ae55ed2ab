import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { bulkScope, cronOperations, cronOwner, countScopedCrons, searchScopedCrons, selectedCronFields } from '../../crons/index.ts';
import { isUuid } from '../../ids/index.ts';
import { resolveAssistantId } from '../../assistants/index.ts';
import { getMaintenanceJob, listMaintenanceJobs, triggerAndWait } from '../../maintenance/index.ts';
import { requireAdmin } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { CRON_NOT_FOUND, HttpError, methodNotAllowed } from '../errors.ts';
import { checkBodySize, sendRun } from './cron-http.ts';
import { MaintenanceJobSchema, TriggerAnswer, TriggerParams, TriggerQuery } from '../schemas/admin.ts';
import { ErrorSchema, NoContent, documentRoutes, errors, json } from '../schemas/common.ts';
import { AdminCronBulkBody, AdminCronCountBody, AdminCronSearchBody, CronTransferAnswer, CronTransferBody } from '../schemas/admin.ts';
import { CronBulkAnswer, CronIdParams, CronUpdateBody } from '../schemas/crons.ts';
import { CronRunSchema, CronSchema } from '../schemas/cron-answers.ts';
import { parse } from '../validate.ts';

// Operator endpoints: every user's crons (search, count, get, update, delete, trigger, bulk
// operations, moving crons between users) and the maintenance jobs. With AUTH_MODE=api_key only
// ADMIN_API_KEYS pass (a user's key gets 403); with AUTH_MODE=none they are as open as the rest
// of the API.

const notAdmin = { 403: json(ErrorSchema, 'Not an admin key (AUTH_MODE=api_key needs one of ADMIN_API_KEYS).') };

documentRoutes('admin', [
  {
    method: 'get',
    path: '/admin/maintenance',
    summary: 'The built-in maintenance jobs: schedule, enabled, next run, last run, last error, last duration',
    responses: { 200: json(z.array(MaintenanceJobSchema)), ...errors(), ...notAdmin },
  },
  {
    method: 'post',
    path: '/admin/maintenance/{job}/trigger',
    summary: 'Run a maintenance job now, on a worker',
    description:
      'Enqueued on agentcron.maintenance like a scheduled occurrence (at most one execution of a job at a time). 202 at once, or 200 once it ' +
      'ended when wait_seconds is given.',
    params: TriggerParams,
    query: TriggerQuery,
    responses: { 200: json(TriggerAnswer), 202: json(TriggerAnswer, 'Enqueued'), ...errors(404, 422), ...notAdmin },
  },
]);

documentRoutes('admin', [
  {
    method: 'post',
    path: '/admin/crons/search',
    summary: "Search every user's crons (user_id says whose each is)",
    description: 'The filters, sort, select and paging of /runs/crons/search, plus user_id (one user) and sort_by user_id.',
    body: AdminCronSearchBody,
    responses: { 200: json(z.array(CronSchema)), ...errors(422), ...notAdmin },
  },
  {
    method: 'post',
    path: '/admin/crons/count',
    summary: "Count every user's crons (or one user's with user_id)",
    body: AdminCronCountBody,
    responses: { 200: json(z.number().int(), 'A bare integer'), ...errors(422), ...notAdmin },
  },
  {
    method: 'post',
    path: '/admin/crons/bulk',
    summary: "Disable, enable or delete every cron matching a filter, whoever's it is; answers the count",
    body: AdminCronBulkBody,
    responses: { 200: json(CronBulkAnswer), ...errors(422), ...notAdmin },
  },
  {
    method: 'post',
    path: '/admin/crons/transfer',
    summary: 'Move crons (and their threads and runs) from one user to another',
    description:
      'Adopting crons made under AUTH_MODE=none (user "anonymous") after turning api_key on: {"from_user_id": "anonymous", "to_user_id": "alice"}. ' +
      "A thread cron's thread moves with it, with the old owner's other crons on that thread and every run on it; so do the threads a stateless " +
      "cron's runs kept. " +
      'CRON_MAX_PER_USER is not applied.',
    body: CronTransferBody,
    responses: { 200: json(CronTransferAnswer), ...errors(422), ...notAdmin },
  },
  {
    method: 'get',
    path: '/admin/crons/{cron_id}',
    summary: "Get any user's cron",
    params: CronIdParams,
    responses: { 200: json(CronSchema), ...errors(404), ...notAdmin },
  },
  {
    method: 'patch',
    path: '/admin/crons/{cron_id}',
    summary: "Update any user's cron, by the owner's rules (PATCH /runs/crons/{cron_id})",
    params: CronIdParams,
    body: CronUpdateBody,
    responses: { 200: json(CronSchema), ...errors(404, 422), ...notAdmin },
  },
  {
    method: 'delete',
    path: '/admin/crons/{cron_id}',
    summary: "Delete any user's cron",
    params: CronIdParams,
    responses: { 204: NoContent, ...errors(404), ...notAdmin },
  },
  {
    method: 'post',
    path: '/admin/crons/{cron_id}/trigger',
    summary: "Run any user's cron now (as its owner)",
    params: CronIdParams,
    responses: { 200: json(CronRunSchema), ...errors(404, 409), ...notAdmin },
  },
]);

/** The owner of the cron a path names, or 404 (an admin sees every cron, so a 404 means none). */
async function ownerOf(pool: ApiDeps['pool'], req: Request): Promise<{ cronId: string; owner: string }> {
  const cronId = req.params.cron_id;
  if (typeof cronId !== 'string' || !isUuid(cronId)) throw new HttpError(404, CRON_NOT_FOUND);
  const owner = await cronOwner(pool, cronId);
  if (owner === null) throw new HttpError(404, CRON_NOT_FOUND);
  return { cronId, owner };
}

const postOnly = (req: Request, res: Response): never => {
  throw methodNotAllowed(res, req.method, req.path, ['POST']);
};

export function adminRoutes(deps: ApiDeps): Router {
  const { pool, boss } = deps;
  const crons = cronOperations(deps);
  const router = Router();
  router.use('/admin', requireAdmin());

  // ---- every user's crons ----

  router.post('/admin/crons/search', async (req, res) => {
    const q = parse(AdminCronSearchBody, req.body);
    const { crons: rows, now } = await searchScopedCrons(pool, {
      user_id: q.user_id ?? null,
      assistant_id: q.assistant_id != null ? resolveAssistantId(q.assistant_id) : null,
      thread_id: q.thread_id,
      enabled: q.enabled,
      metadata: q.metadata,
      cron_id_prefix: q.cron_id_prefix,
      sort_by: q.sort_by,
      sort_order: q.sort_order,
      limit: q.limit,
      offset: q.offset,
    });
    res.json(rows.map((c) => selectedCronFields(c, q.select, now)));
  });

  router.post('/admin/crons/count', async (req, res) => {
    const q = parse(AdminCronCountBody, req.body);
    res.json(
      await countScopedCrons(pool, {
        user_id: q.user_id ?? null,
        assistant_id: q.assistant_id != null ? resolveAssistantId(q.assistant_id) : null,
        thread_id: q.thread_id,
        enabled: q.enabled,
        metadata: q.metadata,
      }),
    );
  });

  router.post('/admin/crons/bulk', async (req, res) => {
    const body = parse(AdminCronBulkBody, req.body);
    res.json(await crons.bulk(bulkScope(body, body.user_id ?? null, true), body.action, body.paused_reason ?? null));
  });

  router.post('/admin/crons/transfer', async (req, res) => {
    res.json(await crons.transfer(parse(CronTransferBody, req.body)));
  });

  router.all(['/admin/crons/search', '/admin/crons/count', '/admin/crons/bulk', '/admin/crons/transfer'], postOnly);

  router.get('/admin/crons/:cron_id', async (req, res) => {
    const { cronId, owner } = await ownerOf(pool, req);
    res.json(await crons.get(cronId, owner));
  });

  router.patch('/admin/crons/:cron_id', async (req, res) => {
    const { cronId, owner } = await ownerOf(pool, req);
    checkBodySize(req, deps.config);
    res.json(await crons.update(cronId, owner, parse(CronUpdateBody, req.body)));
  });

  router.delete('/admin/crons/:cron_id', async (req, res) => {
    const { cronId, owner } = await ownerOf(pool, req);
    await crons.remove(cronId, owner);
    res.status(204).end();
  });

  router.post('/admin/crons/:cron_id/trigger', async (req, res) => {
    const { cronId, owner } = await ownerOf(pool, req);
    sendRun(res, await crons.trigger(cronId, owner), cronId);
  });

  // ---- maintenance ----

  router.get('/admin/maintenance', async (_req, res) => {
    res.json(await listMaintenanceJobs(pool));
  });

  router.post('/admin/maintenance/:job/trigger', async (req, res) => {
    const { job } = parse(TriggerParams, req.params, 'path');
    const { wait_seconds } = parse(TriggerQuery, req.query, 'query');
    const triggered = await triggerAndWait(pool, boss, job, wait_seconds);
    if (!triggered) throw new HttpError(404, `no maintenance job "${job}"`);
    res.status(triggered.done ? 200 : 202).json({ job, job_id: triggered.jobId, state: triggered.state, maintenance_job: await getMaintenanceJob(pool, job) });
  });

  return router;
}
