import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Router } from 'express';
import { z } from 'zod';
import type { AgentRegistry, GraphThreadState, HistoryOptions } from '../../agents/index.ts';
import type { Pool } from '../../db/index.ts';
import { deleteThreadWithRuns } from '../../runs/index.ts';
import {
  countThreads,
  getThread,
  insertThread,
  patchThread,
  searchThreads,
  threadGraphId,
  toCheckpointedThreadState,
  toThreadState,
} from '../../threads/index.ts';
import type { ThreadResponse, ThreadStateResponse } from '../../threads/index.ts';
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
      "A LangGraph graph's thread: its checkpoints (limit, before, metadata). Any other thread: one state, the values its last run stored (none with `before`).",
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

/** A LangGraph graph's thread shows its latest checkpoint; any other thread the values its last run stored. */
async function currentState(pool: Pool, agents: AgentRegistry, thread: ThreadResponse): Promise<ThreadStateResponse> {
  if (agents.keepsCheckpoints()) {
    const graphId = await threadGraphId(pool, thread.thread_id);
    const checkpointed = graphId ? await agents.threadState(graphId, thread.thread_id) : null;
    if (checkpointed) return toCheckpointedThreadState(thread, checkpointed);
  }
  return toThreadState(thread);
}

type CheckpointRef = ThreadStateResponse['checkpoint'];
/** A state in a thread's history: the parent checkpoint is named when known. */
type HistoryState = Omit<ThreadStateResponse, 'parent_checkpoint'> & { parent_checkpoint: CheckpointRef | null };

/** A checkpoint as the history shows it: LangGraph's ThreadState, with the task results and the parent checkpoint. */
function historyState(threadId: string, g: GraphThreadState): HistoryState {
  const ref = (checkpointId: string): CheckpointRef => ({
    thread_id: threadId,
    checkpoint_ns: g.checkpoint_ns,
    checkpoint_id: checkpointId,
    checkpoint_map: null,
  });
  return {
    values: g.values,
    next: g.next,
    tasks: g.tasks.map((t) => ({ ...t, checkpoint: null, state: null, result: t.result ?? null })),
    checkpoint: ref(g.checkpoint_id),
    metadata: g.metadata,
    created_at: g.created_at,
    parent_checkpoint: g.parent_checkpoint_id ? ref(g.parent_checkpoint_id) : null,
    interrupts: g.tasks.flatMap((t) => t.interrupts),
  };
}

/** Whether every key of `wanted` is in `metadata` with an equal value. */
const contains = (metadata: Record<string, unknown>, wanted: Record<string, unknown>) =>
  Object.entries(wanted).every(([k, v]) => isDeepStrictEqual(metadata[k], v));

/** The graph whose checkpoints hold a thread's state: its latest run's, else the one it was created for. */
async function checkpointedGraphOf(pool: Pool, agents: AgentRegistry, thread: ThreadResponse): Promise<string | null> {
  if (!agents.keepsCheckpoints()) return null;
  const fromMetadata = typeof thread.metadata.graph_id === 'string' ? thread.metadata.graph_id : null;
  const graphId = (await threadGraphId(pool, thread.thread_id)) ?? fromMetadata;
  return graphId && agents.keepsCheckpointsOf(graphId) ? graphId : null;
}

/**
 * A thread's history, newest first: a LangGraph graph's checkpoints; for any other thread (or a
 * LangGraph thread with no checkpoint yet) one state, the values its last run stored.
 */
async function threadHistory(pool: Pool, agents: AgentRegistry, thread: ThreadResponse, opts: HistoryOptions): Promise<HistoryState[]> {
  const graphId = await checkpointedGraphOf(pool, agents, thread);
  if (graphId) {
    const states = await agents.threadHistory(graphId, thread.thread_id, opts);
    if (states?.length || opts.before) return (states ?? []).map((g) => historyState(thread.thread_id, g));
  }
  if (opts.before) return [];
  if (opts.metadata && !contains(thread.metadata, opts.metadata)) return [];
  return [toThreadState(thread)];
}

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
