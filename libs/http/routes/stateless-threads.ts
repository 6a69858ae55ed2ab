import type { Pool } from '../../db/index.ts';
import { retryConflicts, withTransaction } from '../../db/index.ts';
import type { PgBoss } from '../../queue/index.ts';
import { endRunsBeforeDelete, runEnded, waitForRunEnd } from '../../runs/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { deleteThread, getThread } from '../../threads/index.ts';
import type { ApiDeps } from '../deps.ts';

// A stateless run's thread: deleted once the run has ended, unless the request keeps it.

/** How long a stateless run's thread is waited for once its client has gone; a run longer than that leaves it behind. */
const STATELESS_CLEANUP_MAX_WAIT_MS = 6 * 3600_000;

/** Deletes a stateless run's thread (with its runs and checkpoints), the lock order of DELETE /threads/{id}. */
export async function deleteStatelessThread(pool: Pool, boss: PgBoss, threadId: string, user: string): Promise<void> {
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
export async function finishStateless(
  deps: { pool: Pool; boss: PgBoss; logger: ApiDeps['logger'] },
  run: RunResponse,
  user: string,
  keep: boolean,
): Promise<void> {
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
