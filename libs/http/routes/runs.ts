import { Router } from 'express';
import {
  cancelRuns,
  deleteEndedRun,
  deleteStatelessThread,
  finishStateless,
  getRun,
  getThreadRun,
  listThreadRuns,
  runEnded,
  startBackgroundStatelessRuns,
  startStatelessRun,
  startThreadRun,
  waitForRunEnd,
} from '../../runs/index.ts';
import { getThread } from '../../threads/index.ts';
import { userOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { HttpError, notFound, RUN_NOT_FOUND, THREAD_NOT_FOUND } from '../errors.ts';
import { pathId, project } from '../schemas/common.ts';
import { CancelQuery, JoinStreamQuery, RunBatchCreate, RunCreate, RunListQuery } from '../schemas/runs.ts';
import { streamModes } from '../stream.ts';
import { parse } from '../validate.ts';
import { JOIN_MAX_WAIT_MS } from './run-params.ts';
import { answerJoin, cancelOnDisconnect, clientGone, joinModes, leftEarly, serveStream, waitAndAnswer } from './run-wait.ts';
// Registers the runs routes' OpenAPI paths.
import './run-docs.ts';

// The runs routes (the LangGraph SDK's runs API): HTTP mapped to run creation (libs/runs start.ts),
// waiting and streaming (run-wait.ts) and a stateless run's thread (libs/runs deletion.ts).

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
    const runId = pathId(req.params.run_id, RUN_NOT_FOUND);
    const q = parse(JoinStreamQuery, req.query, 'query');
    const user = userOf(res);
    const run = await getRun(pool, runId, user);
    if (!run) throw notFound(RUN_NOT_FOUND);
    await serveStream(deps, req, res, {
      threadId: run.thread_id,
      runId,
      user,
      modes: joinModes(q.stream_mode, run),
      cancelOnDisconnect: q.cancel_on_disconnect ?? false,
    });
  });

  router.post('/threads/:thread_id/runs/stream', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const b = parse(RunCreate, req.body);
    const user = userOf(res);
    const run = await startThreadRun(pool, boss, threadId, user, b);
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
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const runId = pathId(req.params.run_id, RUN_NOT_FOUND);
    const q = parse(JoinStreamQuery, req.query, 'query');
    const user = userOf(res);
    const run = await getThreadRun(pool, threadId, runId, user);
    if (!run) throw notFound(RUN_NOT_FOUND);
    await serveStream(deps, req, res, { threadId, runId, user, modes: joinModes(q.stream_mode, run), cancelOnDisconnect: q.cancel_on_disconnect ?? false });
  });

  router.post('/threads/:thread_id/runs', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const run = await startThreadRun(pool, boss, threadId, userOf(res), parse(RunCreate, req.body));
    res.setHeader('Content-Location', `/threads/${threadId}/runs/${run.run_id}`);
    res.json(run);
  });

  router.post('/threads/:thread_id/runs/wait', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const user = userOf(res);
    const b = parse(RunCreate, req.body);
    const run = await startThreadRun(pool, boss, threadId, user, b);
    res.setHeader('Content-Location', `/threads/${threadId}/runs/${run.run_id}`);
    const ended = await waitAndAnswer(pool, res, run, user);
    if (!ended && leftEarly(res) && b.on_disconnect === 'cancel') await cancelOnDisconnect(pool, boss, run.run_id);
  });

  router.get('/threads/:thread_id/runs', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const q = parse(RunListQuery, req.query, 'query');
    const user = userOf(res);
    if (!(await getThread(pool, threadId, user))) throw notFound(THREAD_NOT_FOUND);
    const runs = await listThreadRuns(pool, threadId, user, q);
    res.json(runs.map((r) => project(r, q.select)));
  });

  router.get('/threads/:thread_id/runs/:run_id', async (req, res) => {
    const run = await getThreadRun(pool, pathId(req.params.thread_id, THREAD_NOT_FOUND), pathId(req.params.run_id, RUN_NOT_FOUND), userOf(res));
    if (!run) throw notFound(RUN_NOT_FOUND);
    res.json(run);
  });

  router.delete('/threads/:thread_id/runs/:run_id', async (req, res) => {
    const outcome = await deleteEndedRun(pool, pathId(req.params.thread_id, THREAD_NOT_FOUND), pathId(req.params.run_id, RUN_NOT_FOUND), userOf(res));
    if (outcome === 'missing') throw notFound(RUN_NOT_FOUND);
    if (outcome === 'active') throw new HttpError(409, 'the run has not ended: cancel it first');
    res.status(204).end();
  });

  router.get('/threads/:thread_id/runs/:run_id/join', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const runId = pathId(req.params.run_id, RUN_NOT_FOUND);
    const run = await waitForRunEnd(pool, threadId, runId, userOf(res), { maxWaitMs: JOIN_MAX_WAIT_MS, signal: clientGone(res) });
    await answerJoin(pool, res, run);
  });

  router.post('/threads/:thread_id/runs/:run_id/cancel', async (req, res) => {
    const threadId = pathId(req.params.thread_id, THREAD_NOT_FOUND);
    const runId = pathId(req.params.run_id, RUN_NOT_FOUND);
    const q = parse(CancelQuery, req.query, 'query');
    const run = await getThreadRun(pool, threadId, runId, userOf(res));
    if (!run) throw notFound(RUN_NOT_FOUND);
    if (runEnded(run.status)) throw new HttpError(409, `run ${runId} has already ended (${run.status})`);
    // Marking the run interrupted ends it at once, so wait=1 has nothing left to wait for; the
    // worker holding it is told on commit and aborts the agent.
    await cancelRuns(pool, boss, [runId], q.action);
    res.status(q.wait ? 204 : 202).end();
  });

  return router;
}
