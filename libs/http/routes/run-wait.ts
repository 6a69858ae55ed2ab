import type { Request, Response } from 'express';
import type { AgentRegistry } from '../../agents/index.ts';
import type { Pool } from '../../db/index.ts';
import type { PgBoss } from '../../queue/index.ts';
import { cancelRuns, runEnded, threadValues, waitForRunEnd } from '../../runs/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { HttpError, notFound, RUN_NOT_FOUND } from '../errors.ts';
import { EventStream, streamModes, streamRun } from '../stream.ts';

// Waiting on a run for the runs routes: the wait and join answers, streams, a client that leaves.

/** How long a wait answers nothing before it sends its headers and keeps the connection alive with whitespace. */
const WAIT_KEEPALIVE_AFTER_MS = 5_000;
const WAIT_KEEPALIVE_EVERY_MS = 10_000;

/** A join's answer: the thread's values, or the run's error as LangGraph reports it. */
export async function answerJoin(pool: Pool, res: Response, run: RunResponse | null): Promise<void> {
  if (!run) throw notFound(RUN_NOT_FOUND);
  if (!runEnded(run.status)) throw new HttpError(408, `run ${run.run_id} is still ${run.status}; join again`);
  if (run.status === 'error' || run.status === 'timeout') return void res.json({ __error__: run.error });
  res.json(await threadValues(pool, run.thread_id));
}

/** Stops waiting when the client goes away. */
export function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  return ac.signal;
}

/** Whether the request's client left before its answer was complete. */
export const leftEarly = (res: Response): boolean => !res.writableFinished;

/** Cancels a run whose client asked for it to end with its connection (on_disconnect / cancel_on_disconnect). */
export async function cancelOnDisconnect(pool: Pool, boss: PgBoss, runId: string): Promise<void> {
  await cancelRuns(pool, boss, [runId], 'interrupt', 'by its client disconnecting').catch(() => {});
}

/**
 * Waits for a run to end and answers like a join. Quick runs get an ordinary answer; past a few
 * seconds the headers go out (200) and whitespace keeps the connection alive (JSON ignores it),
 * so a long run is never cut by a client's or proxy's idle timeout. After that point a failure is
 * told in the body, as {"__error__": ...}. `before` runs once the run has ended, before the answer.
 * Answers the ended run; null when the client went away first (or the run is gone).
 */
export async function waitAndAnswer(
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
  else if (!ended) throw notFound(RUN_NOT_FOUND);
  else res.json(answer);
  return ended;
}

/** Streams a run (created by this request, or joined) to the client until it ends. */
export async function serveStream(
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
export function joinModes(asked: unknown, run: RunResponse): Set<string> {
  return streamModes(asked ?? run.kwargs.stream_mode);
}
