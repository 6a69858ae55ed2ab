import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { deleteThreadWithRuns } from '../../runs/index.ts';
import { countThreads, currentState, getThread, insertThread, patchThread, searchThreads, threadHistory } from '../../threads/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError, notFound, THREAD_NOT_FOUND } from '../errors.ts';
import { NoContent, documentRoutes, errors, json, pathId, project } from '../schemas/common.ts';
import {
  ThreadCount,
  ThreadCreate,
  ThreadHistoryQuery,
  ThreadHistoryRequest,
  ThreadPatch,
  ThreadSchema,
  ThreadSearch,
  ThreadStateSchema,
  beforeId,
} from '../schemas/threads.ts';
import { parse } from '../validate.ts';

const ThreadParams = z.object({ thread_id: z.uuid() });

documentRoutes('threads', [
  {
    method: 'post',
    path: '/threads',
    summary: 'Create a thread',
    body: ThreadCreate,
    responses: { 200: json(ThreadSchema), ...errors(409, 422) },
  },
  {
    method: 'post',
    path: '/threads/search',
    summary: "Search the caller's threads",
    body: ThreadSearch,
    responses: { 200: json(z.array(ThreadSchema)), ...errors(422) },
  },
  {
    method: 'post',
    path: '/threads/count',
    summary: "Count the caller's threads",
    body: ThreadCount,
    responses: { 200: json(z.number().int(), 'A bare integer.'), ...errors(422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}',
    summary: 'Get a thread',
    params: ThreadParams,
    responses: { 200: json(ThreadSchema), ...errors(404) },
  },
  {
    method: 'patch',
    path: '/threads/{thread_id}',
    summary: "Merge into a thread's metadata",
    params: ThreadParams,
    body: ThreadPatch,
    responses: { 200: json(ThreadSchema), ...errors(404, 422) },
  },
  {
    method: 'delete',
    path: '/threads/{thread_id}',
    summary: 'Delete a thread with its runs and crons',
    params: ThreadParams,
    responses: { 204: NoContent, ...errors(404) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/state',
    summary: "A thread's current state (values)",
    params: ThreadParams,
    responses: { 200: json(ThreadStateSchema), ...errors(404) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/history',
    summary: "A thread's past states, newest first",
    description:
      "A LangGraph graph's thread: its checkpoints (limit, before, metadata). Any other thread: one state, the values its last run stored " +
      '(none with `before`).',
    params: ThreadParams,
    body: ThreadHistoryRequest,
    responses: { 200: json(z.array(ThreadStateSchema)), ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/history',
    summary: "A thread's past states, newest first",
    params: ThreadParams,
    query: ThreadHistoryQuery,
    responses: { 200: json(z.array(ThreadStateSchema)), ...errors(404, 422) },
  },
]);

export function threadsRoutes({ pool, boss, agents }: ApiDeps): Router {
  const router = Router();

  router.post('/threads', async (req, res) => {
    const body = parse(ThreadCreate, req.body);
    const user = userOf(res);
    const threadId = body.thread_id?.toLowerCase() ?? randomUUID();
    const updates = (body.supersteps ?? []).flatMap((s) => s.updates).filter((u) => u.values !== undefined);
    const created = await insertThread(pool, { thread_id: threadId, user_id: user, metadata: body.metadata ?? {}, values: updates.at(-1)?.values ?? null });
    if (created) return void res.json(created);
    // The id is taken. Only the caller's own thread may be answered; another user's stays invisible.
    const existing = body.if_exists === 'do_nothing' ? await getThread(pool, threadId, user) : null;
    if (existing) return void res.json(existing);
    throw new HttpError(409, `thread ${threadId} already exists`);
  });

  router.post('/threads/search', async (req, res) => {
    const body = parse(ThreadSearch, req.body);
    const threads = await searchThreads(pool, userOf(res), body, {
      limit: body.limit,
      offset: body.offset,
      sort_by: body.sort_by ?? 'created_at',
      sort_order: body.sort_order ?? 'desc',
    });
    res.json(threads.map((t) => project(t, body.select)));
  });

  router.post('/threads/count', async (req, res) => {
    const body = parse(ThreadCount, req.body);
    res.json(await countThreads(pool, userOf(res), body));
  });

  router.get('/threads/:thread_id', async (req, res) => {
    const thread = await getThread(pool, pathId(req.params.thread_id, THREAD_NOT_FOUND), userOf(res));
    if (!thread) throw notFound(THREAD_NOT_FOUND);
    res.json(thread);
  });

  router.patch('/threads/:thread_id', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const body = parse(ThreadPatch, req.body);
    const thread = await patchThread(pool, threadId, userOf(res), body.metadata ?? null);
    if (!thread) throw notFound(THREAD_NOT_FOUND);
    res.json(thread);
  });

  router.delete('/threads/:thread_id', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const user = userOf(res);
    if (!(await deleteThreadWithRuns(pool, boss, threadId, user, 'cancelled: its thread was deleted'))) throw notFound(THREAD_NOT_FOUND);
    res.status(204).end();
  });

  router.post('/threads/:thread_id/history', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const body = parse(ThreadHistoryRequest, req.body);
    const thread = await getThread(pool, threadId, userOf(res));
    if (!thread) throw notFound(THREAD_NOT_FOUND);
    res.json(await threadHistory(pool, agents, thread, { limit: body.limit, before: beforeId(body.before), metadata: body.metadata ?? null }));
  });

  router.get('/threads/:thread_id/history', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const q = parse(ThreadHistoryQuery, req.query, 'query');
    const thread = await getThread(pool, threadId, userOf(res));
    if (!thread) throw notFound(THREAD_NOT_FOUND);
    res.json(await threadHistory(pool, agents, thread, { limit: q.limit, before: q.before ?? null }));
  });

  router.get('/threads/:thread_id/state', async (req, res) => {
    const thread = await getThread(pool, pathId(req.params.thread_id, THREAD_NOT_FOUND), userOf(res));
    if (!thread) throw notFound(THREAD_NOT_FOUND);
    res.json(await currentState(pool, agents, thread));
  });

  return router;
}
