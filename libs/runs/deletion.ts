import { deleteAssistant } from '../assistants/index.ts';
import type { Pool } from '../db/index.ts';
import { retryConflicts, withTransaction } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { deleteThread, getThread } from '../threads/index.ts';
import { endRunsBeforeDelete } from './lifecycle.ts';
import { runEnded, waitForRunEnd } from './repository.ts';
import type { RunResponse } from './repository.ts';

// Deleting what runs belong to (a thread, an assistant) with their runs, in the lock order of
// libs/runs/lifecycle.ts: the runs still going are ended first (ledger rows say why, workers
// stop), then the row goes with its crons and runs. And a stateless run's thread: deleted once
// the run has ended, unless the request keeps it.

/** Deletes the owner's thread with its crons, runs and checkpoints; false when the owner has no such thread. */
export async function deleteThreadWithRuns(pool: Pool, boss: PgBoss, threadId: string, user: string, why: string): Promise<boolean> {
  return retryConflicts(() =>
    withTransaction(pool, async (client) => {
      if (!(await getThread(client, threadId, user))) return false;
      await endRunsBeforeDelete(client, boss, { thread_id: threadId }, why);
      return deleteThread(client, threadId, user);
    }),
  );
}

/** Deletes the owner's assistant with its crons and runs (and its threads when asked); false when the owner has no such assistant. */
export async function deleteAssistantWithRuns(pool: Pool, boss: PgBoss, assistantId: string, user: string, deleteThreads: boolean): Promise<boolean> {
  return retryConflicts(() =>
    withTransaction(pool, async (client) => {
      await endRunsBeforeDelete(client, boss, { assistant_id: assistantId }, 'cancelled: its assistant was deleted');
      return deleteAssistant(client, assistantId, user, deleteThreads);
    }),
  );
}

/** How long a stateless run's thread is waited for once its client has gone; a run longer than that leaves it behind. */
const STATELESS_CLEANUP_MAX_WAIT_MS = 6 * 3600_000;

/** Deletes a stateless run's thread (with its runs and checkpoints), as DELETE /threads/{id} does. */
export async function deleteStatelessThread(pool: Pool, boss: PgBoss, threadId: string, user: string): Promise<void> {
  await deleteThreadWithRuns(pool, boss, threadId, user, 'cancelled: its stateless thread was deleted');
}

/**
 * Once a stateless run has ended its thread goes, unless on_completion is "keep". The client may
 * have gone before that: the wait goes on without it (bounded). A thread still there after it, or
 * whose api process stopped meanwhile, stays as an ordinary thread of the caller's.
 */
export async function finishStateless(deps: { pool: Pool; boss: PgBoss; logger: Logger }, run: RunResponse, user: string, keep: boolean): Promise<void> {
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
