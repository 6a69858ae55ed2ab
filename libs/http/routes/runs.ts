import type { Response } from 'express';
import { Router } from 'express';
import { z } from 'zod';
import { getAssistant } from '../../assistants/index.ts';
import type { Pool } from '../../db/index.ts';
import { withTransaction } from '../../db/index.ts';
import type { PgBoss } from '../../queue/index.ts';
import {
  activeThreadRunIds,
  cancelRuns,
  deleteEndedRun,
  getThreadRun,
  insertBackgroundRun,
  listThreadRuns,
  runEnded,
  threadValues,
  waitForRunEnd,
} from '../../runs/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { getThread, insertThread, lockThread } from '../../threads/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { NoContent, documentRoutes, errors, json, pathId, project } from '../schemas/common.ts';
import { CancelQuery, JoinAnswer, RunCreate, RunListQuery, RunSchema } from '../schemas/runs.ts';
import { parse } from '../validate.ts';

/**
 * How long a join waits before answering 408 (join again): under undici's 300 s headers
 * timeout, so a fetch-based client gets an answer rather than a dropped connection.
 */
const JOIN_MAX_WAIT_MS = 240_000;

const threadNotFound = () => new HttpError(404, 'thread not found');
const runNotFound = () => new HttpError(404, 'run not found');
const ThreadParams = z.object({ thread_id: z.uuid() });
const RunParams = z.object({ thread_id: z.uuid(), run_id: z.uuid() });
const contentLocation = { headers: { 'Content-Location': { description: '/threads/{thread_id}/runs/{run_id}', schema: { type: 'string' as const } } } };

documentRoutes('runs', [
  {
    method: 'post',
    path: '/threads/{thread_id}/runs',
    summary: 'Start a background run on a thread',
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...json(RunSchema), ...contentLocation }, ...errors(404, 409, 422) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/runs/wait',
    summary: "Start a run and answer the thread's values once it ends",
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...json(JoinAnswer), ...contentLocation }, ...errors(404, 408, 409, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs',
    summary: "A thread's runs, newest first",
    params: ThreadParams,
    query: RunListQuery,
    responses: { 200: json(z.array(RunSchema)), ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs/{run_id}',
    summary: 'Get a run',
    params: RunParams,
    responses: { 200: json(RunSchema), ...errors(404) },
  },
  {
    method: 'delete',
    path: '/threads/{thread_id}/runs/{run_id}',
    summary: 'Delete a run that has ended',
    params: RunParams,
    responses: { 204: NoContent, ...errors(404, 409) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs/{run_id}/join',
    summary: "Wait for a run to end; answer the thread's values",
    description: `Waits up to ${JOIN_MAX_WAIT_MS / 1000} s, then answers 408 (join again).`,
    params: RunParams,
    responses: { 200: json(JoinAnswer), ...errors(404, 408) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/runs/{run_id}/cancel',
    summary: 'Cancel a run',
    description:
      'A pending run never starts. A running run is marked interrupted at once and its result discarded; the worker executing it learns of it within about a second and aborts the agent (its AbortSignal).',
    params: RunParams,
    query: CancelQuery,
    responses: { 202: { description: 'Cancelled (wait=0).' }, 204: { description: 'Cancelled and ended (wait=1).' }, ...errors(404, 409, 422) },
  },
]);

/** The run body the worker reads (input, config, context) and what else was sent, without the routing keys. */
function runKwargs(b: z.output<typeof RunCreate>): Record<string, unknown> {
  const { assistant_id: _a, metadata: _m, multitask_strategy: _s, if_not_exists: _i, ...rest } = b;
  const kwargs: Record<string, unknown> = { input: b.input ?? null };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && v !== null) kwargs[k] = v;
  return kwargs;
}

/** Starts a background run: the shared part of POST /runs and /runs/wait. */
async function startRun(pool: Pool, boss: PgBoss, threadId: string, user: string, b: z.output<typeof RunCreate>): Promise<RunResponse> {
  const found = await getAssistant(pool, b.assistant_id, user);
  if (!found) throw new HttpError(404, 'assistant not found');
  const assistant = found.assistant;
  const strategy = b.multitask_strategy ?? 'enqueue';
  if (strategy === 'interrupt' || strategy === 'rollback') {
    // Before taking the thread's lock: cancelling settles the thread too. The same path as a
    // cancel: the runs end interrupted and their workers abort the agents.
    if (await getThread(pool, threadId, user)) {
      await cancelRuns(pool, boss, await activeThreadRunIds(pool, threadId), strategy, `by a new run (multitask_strategy ${strategy})`);
    }
  }
  return withTransaction(pool, async (client) => {
    if (!(await lockThread(client, threadId, user))) {
      if (b.if_not_exists !== 'create') throw threadNotFound();
      const metadata = { graph_id: assistant.graph_id, assistant_id: assistant.assistant_id };
      // The id is taken by another user's thread (ids are global): it cannot be created, and
      // the answer is the one a missing thread gets, so it tells nothing about that thread.
      if (!(await insertThread(client, { thread_id: threadId, user_id: user, metadata, values: null }))) throw threadNotFound();
    } else if (strategy === 'reject' && (await activeThreadRunIds(client, threadId)).length > 0) {
      throw new HttpError(409, 'the thread has a run that has not ended (multitask_strategy reject)');
    }
    return insertBackgroundRun(client, boss, {
      thread_id: threadId,
      assistant_id: assistant.assistant_id,
      user_id: user,
      kwargs: runKwargs(b),
      metadata: b.metadata ?? {},
      multitask_strategy: strategy,
      after_seconds: b.after_seconds,
    });
  });
}

/** A join's answer: the thread's values, or the run's error as LangGraph reports it. */
async function answerJoin(pool: Pool, res: Response, run: RunResponse | null): Promise<void> {
  if (!run) throw runNotFound();
  if (!runEnded(run.status)) throw new HttpError(408, `run ${run.run_id} is still ${run.status}; join again`);
  if (run.status === 'error' || run.status === 'timeout') return void res.json({ __error__: run.error });
  res.json(await threadValues(pool, run.thread_id));
}

/** Stops waiting when the client goes away. */
function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  return ac.signal;
}

export function runsRoutes({ pool, boss }: ApiDeps): Router {
  const router = Router();

  router.post('/threads/:thread_id/runs', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const run = await startRun(pool, boss, threadId, userOf(res), parse(RunCreate, req.body));
    res.setHeader('Content-Location', `/threads/${threadId}/runs/${run.run_id}`);
    res.json(run);
  });

  router.post('/threads/:thread_id/runs/wait', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const user = userOf(res);
    const run = await startRun(pool, boss, threadId, user, parse(RunCreate, req.body));
    res.setHeader('Content-Location', `/threads/${threadId}/runs/${run.run_id}`);
    await answerJoin(pool, res, await waitForRunEnd(pool, threadId, run.run_id, user, { maxWaitMs: JOIN_MAX_WAIT_MS, signal: clientGone(res) }));
  });

  router.get('/threads/:thread_id/runs', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const q = parse(RunListQuery, req.query, 'query');
    const user = userOf(res);
    if (!(await getThread(pool, threadId, user))) throw threadNotFound();
    const runs = await listThreadRuns(pool, threadId, user, q);
    res.json(runs.map((r) => project(r, q.select)));
  });

  router.get('/threads/:thread_id/runs/:run_id', async (req, res) => {
    const run = await getThreadRun(pool, pathId(req.params.thread_id, 'thread'), pathId(req.params.run_id, 'run'), userOf(res));
    if (!run) throw runNotFound();
    res.json(run);
  });

  router.delete('/threads/:thread_id/runs/:run_id', async (req, res) => {
    const outcome = await deleteEndedRun(pool, pathId(req.params.thread_id, 'thread'), pathId(req.params.run_id, 'run'), userOf(res));
    if (outcome === 'missing') throw runNotFound();
    if (outcome === 'active') throw new HttpError(409, 'the run has not ended: cancel it first');
    res.status(204).end();
  });

  router.get('/threads/:thread_id/runs/:run_id/join', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const runId = pathId(req.params.run_id, 'run');
    const run = await waitForRunEnd(pool, threadId, runId, userOf(res), { maxWaitMs: JOIN_MAX_WAIT_MS, signal: clientGone(res) });
    await answerJoin(pool, res, run);
  });

  router.post('/threads/:thread_id/runs/:run_id/cancel', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const runId = pathId(req.params.run_id, 'run');
    const q = parse(CancelQuery, req.query, 'query');
    const run = await getThreadRun(pool, threadId, runId, userOf(res));
    if (!run) throw runNotFound();
    if (runEnded(run.status)) throw new HttpError(409, `run ${runId} has already ended (${run.status})`);
    // Marking the run interrupted ends it at once, so wait=1 has nothing left to wait for; the
    // worker holding it is told on commit and aborts the agent.
    await cancelRuns(pool, boss, [runId], q.action);
    res.status(q.wait ? 204 : 202).end();
  });

  return router;
}
