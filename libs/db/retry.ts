import { PgErrorCode, pgErrorCode } from './pool.ts';

/**
 * A transaction PostgreSQL aborted to break a deadlock (40P01) or a serialization conflict
 * (40001): nothing of it was written, so running it again from the start is always safe.
 */
export function isTransientConflict(err: unknown): boolean {
  const code = pgErrorCode(err);
  return code === PgErrorCode.serializationFailure || code === PgErrorCode.deadlockDetected;
}

/**
 * Runs a whole transaction (fn must BEGIN and COMMIT itself, e.g. through withTransaction) again
 * when PostgreSQL aborted it as a deadlock victim or a serialization failure, up to `attempts`
 * times in all with a short random pause, so the owner of a lifecycle, not its caller, absorbs
 * them. Any other error, or the last conflict, is thrown.
 */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !isTransientConflict(err)) throw err;
      // Jitter, growing: two victims of the same cycle do not meet again in lockstep.
      await new Promise((r) => setTimeout(r, Math.random() * 10 * 2 ** attempt));
    }
  }
}
