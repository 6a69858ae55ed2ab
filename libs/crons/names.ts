import type { Queryable } from '../db/index.ts';

// Cron names (issue 19): `metadata.name`, the one cron field every LangGraph SDK passes, names a
// cron for people (the dashboard's title, the CLI's `crons get <name>`). Unique per owner when
// set. Enforced here, under an advisory lock per (owner, name), rather than by a unique index:
// crons written before names were a rule may already share one, and a unique index would make
// the migration fail on them. The lookup index is migrations/017_names_and_run_listing.sql.

/** The longest cron name, in characters. */
export const CRON_NAME_MAX = 100;

/**
 * The name in a cron's metadata: a string of 1-100 characters, or null when metadata has none
 * (or `name: null`). Answers why otherwise, as a reason for a 422 naming `metadata.name`.
 */
export function cronNameOf(metadata: Record<string, unknown> | null | undefined): { name: string | null } | { invalid: string } {
  const name = metadata?.name;
  if (name === undefined || name === null) return { name: null };
  if (typeof name !== 'string') return { invalid: `must be a string (the cron's name, 1-${CRON_NAME_MAX} characters)` };
  if (name.trim() === '') return { invalid: 'must not be empty or blank (leave it out for a cron without a name)' };
  if ([...name].length > CRON_NAME_MAX) return { invalid: `at most ${CRON_NAME_MAX} characters (got ${[...name].length})` };
  return { name };
}

/**
 * Another cron of the owner already named `name` (its id), or null; `exceptId` is the cron being
 * renamed. Takes the (owner, name) advisory lock first, held to the end of the transaction, so
 * two writers of one name take turns and the second sees the first's committed row. The lock is
 * taken after the cron's own row lock (PATCH) and before the insert (create): no cycle with the
 * lock order of libs/runs/lifecycle.ts.
 */
export async function lockCronName(db: Queryable, userId: string, name: string, exceptId: string | null): Promise<string | null> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtextextended('agentcron.crons.name:' || $1 || ':' || $2, 0))`, [userId, name]);
  const { rows } = await db.query<{ cron_id: string }>(
    `SELECT cron_id FROM crons
      WHERE user_id = $1 AND metadata ? 'name' AND metadata->>'name' = $2 AND cron_id IS DISTINCT FROM $3::uuid
      LIMIT 1`,
    [userId, name, exceptId],
  );
  return rows[0]?.cron_id ?? null;
}
