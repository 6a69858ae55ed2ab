import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { Router } from 'express';
import { z } from 'zod';
import { getAssistant } from '../../assistants/index.ts';
import type { AgentRegistry } from '../../agents/index.ts';
import type { Pool } from '../../db/index.ts';
import { retryConflicts, withTransaction } from '../../db/index.ts';
import type { PgBoss } from '../../queue/index.ts';
import {
  activeThreadRunIds,
  cancelRuns,
  deleteEndedRun,
  endRunsBeforeDelete,
  getRun,
  getThreadRun,
  insertBackgroundRun,
  insertRuns,
  listThreadRuns,
  runEnded,
  threadValues,
  waitForRunEnd,
} from '../../runs/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { deleteThread, getThread, insertThread, lockThread } from '../../threads/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { NoContent, documentRoutes, errors, json, pathId, project } from '../schemas/common.ts';
import { CancelQuery, JoinAnswer, JoinStreamQuery, RunBatchCreate, RunCreate, RunListQuery, RunSchema } from '../schemas/runs.ts';
import { EventStream, streamModes, streamRun } from '../stream.ts';
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
    description:
      'However long the run takes: after 5 s the answer (200) is kept alive with whitespace, so a failure after that point is told in the body as {"__error__": ...}.',
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...json(JoinAnswer), ...contentLocation }, ...errors(404, 409, 422) },
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

const sse = {
  description: 'Server-sent events: metadata, then values / updates as the run goes (LangGraph graphs: one per checkpoint), error if it failed, end.',
  content: { 'text/event-stream': { schema: { type: 'string' as const } } },
};
const statelessLocation = { headers: { 'Content-Location': { description: '/runs/{run_id}', schema: { type: 'string' as const } } } };

documentRoutes('runs', [
  {
    method: 'post',
    path: '/runs',
    summary: 'Start a stateless background run',
    description: 'On a fresh thread, deleted with the run once it ends unless on_completion is "keep" (as a stateless cron).',
    body: RunCreate,
    responses: { 200: { ...json(RunSchema), ...statelessLocation }, ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/runs/batch',
    summary: 'Start several stateless background runs',
    description: 'Each as POST /runs, all in one transaction (at most 100).',
    body: RunBatchCreate,
    responses: { 200: json(z.array(RunSchema)), ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/runs/wait',
    summary: 'Run on a fresh thread and answer its values once the run ends',
    description:
      'The thread is deleted once the run has ended unless on_completion is "keep". While the run goes the answer is kept alive with whitespace (after 5 s), so a failure then is told in the body as {"__error__": ...}.',
    body: RunCreate,
    responses: { 200: { ...json(JoinAnswer), ...statelessLocation }, ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/runs/stream',
    summary: 'Run on a fresh thread and stream its events',
    description: 'The thread is deleted once the run has ended unless on_completion is "keep".',
    body: RunCreate,
    responses: { 200: { ...sse, ...statelessLocation }, ...errors(404, 422) },
  },
  {
    method: 'post',
    path: '/threads/{thread_id}/runs/stream',
    summary: 'Start a run on a thread and stream its events',
    params: ThreadParams,
    body: RunCreate,
    responses: { 200: { ...sse, ...contentLocation }, ...errors(404, 409, 422) },
  },
  {
    method: 'get',
    path: '/threads/{thread_id}/runs/{run_id}/stream',
    summary: "Join a run's event stream (a cron's run too), until it ends",
    params: RunParams,
    query: JoinStreamQuery,
    responses: { 200: sse, ...errors(404, 422) },
  },
  {
    method: 'get',
    path: '/runs/{run_id}/stream',
    summary: "Join a run's event stream by its id alone (stateless runs)",
    params: z.object({ run_id: z.uuid() }),
    query: JoinStreamQuery,
    responses: { 200: sse, ...errors(404, 422) },
  },
]);

/** How long a wait answers nothing before it sends its headers and keeps the connection alive with whitespace. */
const WAIT_KEEPALIVE_AFTER_MS = 5_000;
const WAIT_KEEPALIVE_EVERY_MS = 10_000;
/** How long a stateless run's thread is waited for once its client has gone; a run longer than that leaves it behind. */
const STATELESS_CLEANUP_MAX_WAIT_MS = 6 * 3600_000;

/** The run body the worker reads (input, config, context) and what else was sent, without the routing keys. */
function runKwargs(b: z.output<typeof RunCreate>): Record<string, unknown> {
  const { assistant_id: _a, metadata: _m, multitask_strategy: _s, if_not_exists: _i, on_disconnect: _d, ...rest } = b;
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

/** Whether the request's client left before its answer was complete. */
const leftEarly = (res: Response): boolean => !res.writableFinished;

/**
 * Starts a stateless run: a fresh thread of the caller's (deleted by the API once the run has
 * ended, see finishStateless), and the run on it.
 */
function startStatelessRun(pool: Pool, boss: PgBoss, user: string, b: z.output<typeof RunCreate>): Promise<RunResponse> {
  return startRun(pool, boss, randomUUID(), user, { ...b, if_not_exists: 'create', multitask_strategy: null });
}

/** Deletes a stateless run's thread (with its runs and checkpoints), the lock order of DELETE /threads/{id}. */
async function deleteStatelessThread(pool: Pool, boss: PgBoss, threadId: string, user: string): Promise<void> {
  await retryConflicts(() =>
    withTransaction(pool, async (client) => {
      if (!(await getThread(client, threadId, user))) return false;
      await endRunsBeforeDelete(client, boss, { thread_id: threadId }, 'cancelled: its stateless thread was deleted');
      return deleteThread(client, threadId, user);
    }),
  );
}

/**
 * Once a stateless run has ended its thread goes, unless on_completion is "keep". The client may
 * have gone before that: the wait goes on without it (bounded). A thread still there after it, or
 * whose api process stopped meanwhile, stays as an ordinary thread of the caller's.
 */
async function finishStateless(deps: { pool: Pool; boss: PgBoss; logger: ApiDeps['logger'] }, run: RunResponse, user: string, keep: boolean): Promise<void> {
  if (keep) return;
  try {
    const ended = await waitForRunEnd(deps.pool, run.thread_id, run.run_id, user, { maxWaitMs: STATELESS_CLEANUP_MAX_WAIT_MS });
    if (ended && !runEnded(ended.status)) return;
    await deleteStatelessThread(deps.pool, deps.boss, run.thread_id, user);
  } catch (err) {
    deps.logger.warn('could not delete the thread of a stateless run', {
      run_id: run.run_id,
      thread_id: run.thread_id,
      err: err instanceof Error ? err.message : String(err),
    });
  }
}

/**
 * Stateless background runs (POST /runs, /runs/batch), in one transaction: each on a fresh thread
 * the worker deletes with it once it ends (as a stateless cron's occurrence) unless on_completion
 * is "keep".
 */
async function startBackgroundStatelessRuns(pool: Pool, boss: PgBoss, user: string, bodies: z.output<typeof RunCreate>[]): Promise<RunResponse[]> {
  const assistants = new Map<string, { assistant_id: string; graph_id: string }>();
  for (const b of bodies) {
    if (assistants.has(b.assistant_id)) continue;
    const found = await getAssistant(pool, b.assistant_id, user);
    if (!found) throw new HttpError(404, 'assistant not found');
    assistants.set(b.assistant_id, found.assistant);
  }
  const runIds = bodies.map(() => randomUUID());
  await withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ now: Date }>(`SELECT now() AS now`);
    const now = rows[0].now.getTime();
    await insertRuns(
      client,
      boss,
      bodies.map((b, i) => {
        const assistant = assistants.get(b.assistant_id)!;
        const threadId = randomUUID();
        return {
          run_id: runIds[i],
          thread_id: threadId,
          assistant_id: assistant.assistant_id,
          user_id: user,
          cron_id: null,
          scheduled_for: null,
          kwargs: runKwargs(b),
          multitask_strategy: 'enqueue' as const,
          metadata: b.metadata ?? {},
          new_thread: {
            metadata: { graph_id: assistant.graph_id, assistant_id: assistant.assistant_id },
            ephemeral: (b.on_completion ?? 'delete') === 'delete',
          },
          serialize_key: threadId,
          start_after: b.after_seconds ? new Date(now + b.after_seconds * 1000) : undefined,
        };
      }),
    );
  });
  const runs = await Promise.all(runIds.map((id) => getRun(pool, id, user)));
  return runs.map((r) => {
    if (!r) throw runNotFound();
    return r;
  });
}

/** Cancels a run whose client asked for it to end with its connection (on_disconnect / cancel_on_disconnect). */
async function cancelOnDisconnect(pool: Pool, boss: PgBoss, runId: string): Promise<void> {
  await cancelRuns(pool, boss, [runId], 'interrupt', 'by its client disconnecting').catch(() => {});
}

/**
 * Waits for a run to end and answers like a join. Quick runs get an ordinary answer; past a few
 * seconds the headers go out (200) and whitespace keeps the connection alive (JSON ignores it),
 * so a long run is never cut by a client's or proxy's idle timeout. After that point a failure is
 * told in the body, as {"__error__": ...}. `before` runs once the run has ended, before the answer.
 * Answers the ended run; null when the client went away first (or the run is gone).
 */
async function waitAndAnswer(
  pool: Pool,
  res: Response,
  run: RunResponse,
  user: string,
  opts: { before?: (ended: RunResponse | null) => Promise<void> } = {},
): Promise<RunResponse | null> {
  const signal = clientGone(res);
  let keepalive: NodeJS.Timeout | undefined;
  const start = setTimeout(() => {
    res.status(200).setHeader('Content-Type', 'application/json; charset=utf-8');
    res.write('\n');
    keepalive = setInterval(() => res.write('\n'), WAIT_KEEPALIVE_EVERY_MS);
  }, WAIT_KEEPALIVE_AFTER_MS);
  let ended: RunResponse | null;
  let answer: unknown;
  try {
    ended = await waitForRunEnd(pool, run.thread_id, run.run_id, user, { maxWaitMs: Number.POSITIVE_INFINITY, signal });
    if (signal.aborted) {
      clearTimeout(start);
      clearInterval(keepalive);
      return null;
    }
    if (!ended) answer = { __error__: { error: 'NotFound', message: `run ${run.run_id} no longer exists (its thread was deleted, or it was rolled back)` } };
    else if (ended.status === 'error' || ended.status === 'timeout') answer = { __error__: ended.error };
    else answer = await threadValues(pool, run.thread_id);
    await opts.before?.(ended);
  } catch (err) {
    clearTimeout(start);
    clearInterval(keepalive);
    if (!res.headersSent) throw err;
    res.end(JSON.stringify({ __error__: { error: 'WaitError', message: err instanceof Error ? err.message : String(err) } }));
    return null;
  }
  clearTimeout(start);
  clearInterval(keepalive);
  if (res.headersSent) res.end(JSON.stringify(answer));
  else if (!ended) throw runNotFound();
  else res.json(answer);
  return ended;
}

/** Streams a run (created by this request, or joined) to the client until it ends. */
async function serveStream(
  deps: { pool: Pool; boss: PgBoss; agents: AgentRegistry },
  req: Request,
  res: Response,
  target: {
    threadId: string;
    runId: string;
    user: string;
    modes: Set<string>;
    cancelOnDisconnect: boolean;
    headers?: Record<string, string>;
    beforeEnd?: (run: RunResponse) => Promise<void>;
  },
): Promise<RunResponse | null> {
  const stream = new EventStream(res, { headers: target.headers, lastEventId: req.get('last-event-id') });
  const ended = await streamRun(stream, {
    pool: deps.pool,
    agents: deps.agents,
    threadId: target.threadId,
    runId: target.runId,
    userId: target.user,
    modes: target.modes,
    beforeEnd: target.beforeEnd,
  });
  stream.end();
  if (!ended && target.cancelOnDisconnect && leftEarly(res)) await cancelOnDisconnect(deps.pool, deps.boss, target.runId);
  return ended;
}

/** The stream modes a join sends: those asked, else those the run was created with, else values. */
function joinModes(asked: unknown, run: RunResponse): Set<string> {
  return streamModes(asked ?? run.kwargs.stream_mode);
}

export function runsRoutes({ pool, boss, agents, logger }: ApiDeps): Router {
  const router = Router();
  const deps = { pool, boss, agents, logger };

  router.post('/runs', async (req, res) => {
    const [run] = await startBackgroundStatelessRuns(pool, boss, userOf(res), [parse(RunCreate, req.body)]);
    res.setHeader('Content-Location', `/runs/${run.run_id}`);
    res.json(run);
  });

  router.post('/runs/batch', async (req, res) => {
    res.json(await startBackgroundStatelessRuns(pool, boss, userOf(res), parse(RunBatchCreate, req.body)));
  });

  router.post('/runs/wait', async (req, res) => {
    const b = parse(RunCreate, req.body);
    const user = userOf(res);
    const run = await startStatelessRun(pool, boss, user, b);
    const keep = b.on_completion === 'keep';
    res.setHeader('Content-Location', `/runs/${run.run_id}`);
    const ended = await waitAndAnswer(pool, res, run, user, {
      // The thread goes before the answer, so a client that got the values finds it gone.
      before: async (done) => {
        if (!keep && done) await deleteStatelessThread(pool, boss, run.thread_id, user);
      },
    });
    if (!ended && leftEarly(res)) {
      if (b.on_disconnect === 'cancel') await cancelOnDisconnect(pool, boss, run.run_id);
      void finishStateless(deps, run, user, keep);
    }
  });

  router.post('/runs/stream', async (req, res) => {
    const b = parse(RunCreate, req.body);
    const user = userOf(res);
    const run = await startStatelessRun(pool, boss, user, b);
    const keep = b.on_completion === 'keep';
    const ended = await serveStream(deps, req, res, {
      threadId: run.thread_id,
      runId: run.run_id,
      user,
      modes: streamModes(b.stream_mode),
      cancelOnDisconnect: b.on_disconnect === 'cancel',
      headers: { 'Content-Location': `/runs/${run.run_id}` },
      // The thread goes before `end`, so a client that saw the end finds it gone.
      beforeEnd: async () => {
        if (!keep) await deleteStatelessThread(pool, boss, run.thread_id, user);
      },
    });
    if (!ended) void finishStateless(deps, run, user, keep);
  });

  router.get('/runs/:run_id/stream', async (req, res) => {
    const runId = pathId(req.params.run_id, 'run');
    const q = parse(JoinStreamQuery, req.query, 'query');
    const user = userOf(res);
    const run = await getRun(pool, runId, user);
    if (!run) throw runNotFound();
    await serveStream(deps, req, res, {
      threadId: run.thread_id,
      runId,
      user,
      modes: joinModes(q.stream_mode, run),
      cancelOnDisconnect: q.cancel_on_disconnect ?? false,
    });
  });

  router.post('/threads/:thread_id/runs/stream', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const b = parse(RunCreate, req.body);
    const user = userOf(res);
    const run = await startRun(pool, boss, threadId, user, b);
    const path = `/threads/${threadId}/runs/${run.run_id}`;
    await serveStream(deps, req, res, {
      threadId,
      runId: run.run_id,
      user,
      modes: streamModes(b.stream_mode),
      cancelOnDisconnect: b.on_disconnect === 'cancel',
      // Location: where a client that lost the connection joins again (the 1.x SDK does, with Last-Event-ID).
      headers: { 'Content-Location': path, Location: `${path}/stream` },
    });
  });

  router.get('/threads/:thread_id/runs/:run_id/stream', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const runId = pathId(req.params.run_id, 'run');
    const q = parse(JoinStreamQuery, req.query, 'query');
    const user = userOf(res);
    const run = await getThreadRun(pool, threadId, runId, user);
    if (!run) throw runNotFound();
    await serveStream(deps, req, res, { threadId, runId, user, modes: joinModes(q.stream_mode, run), cancelOnDisconnect: q.cancel_on_disconnect ?? false });
  });

  router.post('/threads/:thread_id/runs', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const run = await startRun(pool, boss, threadId, userOf(res), parse(RunCreate, req.body));
    res.setHeader('Content-Location', `/threads/${threadId}/runs/${run.run_id}`);
    res.json(run);
  });

  router.post('/threads/:thread_id/runs/wait', async (req, res) => {
    const threadId = pathId(req.params.thread_id, 'thread');
    const user = userOf(res);
    const b = parse(RunCreate, req.body);
    const run = await startRun(pool, boss, threadId, user, b);
    res.setHeader('Content-Location', `/threads/${threadId}/runs/${run.run_id}`);
    const ended = await waitAndAnswer(pool, res, run, user);
    if (!ended && leftEarly(res) && b.on_disconnect === 'cancel') await cancelOnDisconnect(pool, boss, run.run_id);
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
