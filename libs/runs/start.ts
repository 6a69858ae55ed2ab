import { randomUUID } from 'node:crypto';
import { getAssistant } from '../assistants/index.ts';
import type { Pool } from '../db/index.ts';
import { withTransaction } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { conflict, missing } from '../refusal/index.ts';
import { getThread, insertThread, lockThread } from '../threads/index.ts';
import type { MultitaskStrategy } from './enqueue.ts';
import { insertRuns } from './enqueue.ts';
import { cancelRuns } from './lifecycle.ts';
import { activeThreadRunIds, getRun, insertBackgroundRun } from './repository.ts';
import type { RunResponse } from './repository.ts';

// Run creation (the API's run routes): a run on a thread (created if asked), a stateless run on a
// fresh thread, a batch of background stateless runs; refused (libs/refusal) naming what is missing.

/** A run as asked for (the API's RunCreate, validated): the routing keys, and the run body the worker reads. */
export interface RunRequest {
  assistant_id: string;
  input?: unknown;
  metadata?: Record<string, unknown> | null;
  multitask_strategy?: MultitaskStrategy | null;
  if_not_exists?: 'create' | 'reject' | null;
  after_seconds?: number | null;
  on_completion?: 'delete' | 'keep' | null;
  on_disconnect?: 'cancel' | 'continue' | null;
  [field: string]: unknown;
}

/** The run body the worker reads (input, config, context) and what else was sent, without the routing keys. */
export function runKwargs(b: RunRequest): Record<string, unknown> {
  const { assistant_id: _a, metadata: _m, multitask_strategy: _s, if_not_exists: _i, on_disconnect: _d, ...rest } = b;
  const kwargs: Record<string, unknown> = { input: b.input ?? null };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && v !== null) kwargs[k] = v;
  return kwargs;
}

/** Starts a background run: the shared part of POST /runs and /runs/wait. */
export async function startThreadRun(pool: Pool, boss: PgBoss, threadId: string, user: string, b: RunRequest): Promise<RunResponse> {
  const found = await getAssistant(pool, b.assistant_id, user);
  if (!found) throw missing('assistant');
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
      if (b.if_not_exists !== 'create') throw missing('thread');
      const metadata = { graph_id: assistant.graph_id, assistant_id: assistant.assistant_id };
      // The id is taken by another user's thread (ids are global): it cannot be created, and
      // the answer is the one a missing thread gets, so it tells nothing about that thread.
      if (!(await insertThread(client, { thread_id: threadId, user_id: user, metadata, values: null }))) throw missing('thread');
    } else if (strategy === 'reject' && (await activeThreadRunIds(client, threadId)).length > 0) {
      throw conflict('the thread has a run that has not ended (multitask_strategy reject)');
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

/**
 * Starts a stateless run: a fresh thread of the caller's (deleted by the API once the run has
 * ended, see finishStateless), and the run on it.
 */
export function startStatelessRun(pool: Pool, boss: PgBoss, user: string, b: RunRequest): Promise<RunResponse> {
  return startThreadRun(pool, boss, randomUUID(), user, { ...b, if_not_exists: 'create', multitask_strategy: null });
}

/**
 * Stateless background runs (POST /runs, /runs/batch), in one transaction: each on a fresh thread
 * the worker deletes with it once it ends (as a stateless cron's occurrence) unless on_completion
 * is "keep".
 */
export async function startBackgroundStatelessRuns(pool: Pool, boss: PgBoss, user: string, bodies: RunRequest[]): Promise<RunResponse[]> {
  const assistants = new Map<string, { assistant_id: string; graph_id: string }>();
  for (const b of bodies) {
    if (assistants.has(b.assistant_id)) continue;
    const found = await getAssistant(pool, b.assistant_id, user);
    if (!found) throw missing('assistant');
    assistants.set(b.assistant_id, found.assistant);
  }
  const runIds = bodies.map(() => randomUUID());
  // The answer is read in the creating transaction: once it commits, a worker may run a
  // stateless run and delete it with its thread before a read made after the commit, which then
  // answered 404 "run not found" for the run just created.
  return withTransaction(pool, async (client) => {
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
    const created: RunResponse[] = [];
    for (const id of runIds) {
      const run = await getRun(client, id, user);
      if (!run) throw missing('run');
      created.push(run);
    }
    return created;
  });
}
