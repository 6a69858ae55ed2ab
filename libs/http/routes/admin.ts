import { Router } from 'express';
import { z } from 'zod';
import { getMaintenanceJob, listMaintenanceJobs, triggerMaintenanceJob } from '../../maintenance/index.ts';
import { QUEUES } from '../../queue/index.ts';
import { requireAdmin } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { MaintenanceJobSchema, TriggerAnswer, TriggerParams, TriggerQuery } from '../schemas/admin.ts';
import { ErrorSchema, documentRoutes, errors, json } from '../schemas/common.ts';
import { parse } from '../validate.ts';

// Operator endpoints. With AUTH_MODE=api_key only ADMIN_API_KEYS pass (a user's key gets 403);
// with AUTH_MODE=none they are as open as the rest of the API.

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
    description: 'Enqueued on agentcron.maintenance like a scheduled occurrence (at most one execution of a job at a time). 202 at once, or 200 once it ended when wait_seconds is given.',
    params: TriggerParams,
    query: TriggerQuery,
    responses: { 200: json(TriggerAnswer), 202: json(TriggerAnswer, 'Enqueued'), ...errors(404, 422), ...notAdmin },
  },
]);

const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);

export function adminRoutes({ pool, boss }: ApiDeps): Router {
  const router = Router();
  router.use('/admin', requireAdmin());

  router.get('/admin/maintenance', async (_req, res) => {
    res.json(await listMaintenanceJobs(pool));
  });

  router.post('/admin/maintenance/:job/trigger', async (req, res) => {
    const { job } = parse(TriggerParams, req.params, 'path');
    const { wait_seconds } = parse(TriggerQuery, req.query, 'query');
    const jobId = await triggerMaintenanceJob(pool, boss, job);
    if (!jobId) throw new HttpError(404, `no maintenance job "${job}"`);
    let state = 'created';
    const deadline = Date.now() + wait_seconds * 1000;
    while (Date.now() < deadline) {
      state = (await boss.getJobById(QUEUES.maintenance, jobId))?.state ?? state;
      if (FINAL_STATES.has(state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    res.status(FINAL_STATES.has(state) ? 200 : 202).json({ job, job_id: jobId, state, maintenance_job: await getMaintenanceJob(pool, job) });
  });

  return router;
}
