import type { Queryable } from '../../db/index.ts';

/** Rows deleted per statement: big enough to be quick, small enough to hold locks only briefly. */
export const BATCH = 5000;

/**
 * Runs a DELETE that removes at most BATCH rows (its last parameter is the batch size) until a
 * batch comes back short or the signal aborts; answers the rows deleted.
 */
export async function deleteInBatches(db: Queryable, sql: string, params: unknown[], signal: AbortSignal): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(sql, [...params, BATCH]);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < BATCH || signal.aborted) return total;
  }
}
