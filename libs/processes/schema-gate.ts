import { describeSchemaState, readSchemaState, retryWhileUnavailable, sleep } from '../db/index.ts';
import type { Pool, SchemaState } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { foundQueueSchemaVersion, neededQueueSchemaVersion } from '../queue/index.ts';

// The schema version gate: a process whose code needs migrations the database does not have yet
// (new code started before its release, as a rolling deploy without a release phase does) waits:
// no claims, no scheduler passes, the api answering 503 saying why. It looks again every few
// seconds and starts on its own once the release has run. Older code on a newer schema runs:
// every migration is an expansion older code tolerates (migrations/README.md).

export interface SchemaBehind {
  state: SchemaState;
  /** One sentence: what is missing and what must run. */
  detail: string;
}

/** Null when the database has every migration this code ships (and, unless `queue` is null, pg-boss's schema this pg-boss needs). */
export async function schemaBehind(pool: Pool, queueSchema: string | null): Promise<SchemaBehind | null> {
  const state = await readSchemaState(pool);
  if (state.behind) return { state, detail: describeSchemaState(state) };
  if (queueSchema !== null) {
    const needed = neededQueueSchemaVersion();
    const found = await foundQueueSchemaVersion(pool, queueSchema);
    if (found === null || found < needed) {
      return {
        state,
        detail:
          `the queue's schema (pg-boss, schema ${queueSchema}) is ${found === null ? 'not installed' : `at version ${found}`} and this ` +
          `version of agentcron needs ${needed}: a release (npm run migrate, the Procfile's release) must run`,
      };
    }
  }
  return null;
}

/**
 * Returns once the schema is what the code needs, calling onBehind with each finding while it is
 * not (the first one logged as a warning, later ones only when they change). Rejects when
 * `signal` aborts (SIGTERM).
 */
export async function awaitSchema(
  pool: Pool,
  opts: { logger: Logger; signal?: AbortSignal; pollSeconds: number; queueSchema: string | null; onBehind?: (behind: SchemaBehind) => void | Promise<void> },
): Promise<void> {
  const wait = { logger: opts.logger, signal: opts.signal };
  let last = '';
  let waited = false;
  for (;;) {
    const behind = await retryWhileUnavailable('schema version', () => schemaBehind(pool, opts.queueSchema), wait);
    if (!behind) {
      if (waited) opts.logger.info(`the release has run (${describeSchemaState(await readSchemaState(pool))}): starting`);
      return;
    }
    if (behind.detail !== last) {
      opts.logger.warn(
        `waiting for the schema: ${behind.detail}; no runs are claimed, no occurrences fired, the api answers 503 until then (looking again ` +
          `every ${opts.pollSeconds}s)`,
      );
      last = behind.detail;
    }
    waited = true;
    await opts.onBehind?.(behind);
    await sleep(opts.pollSeconds * 1000, opts.signal);
  }
}
