import type { Pool, PoolClient, Queryable } from '../db/index.ts';
import { retryConflicts, withTransaction } from '../db/index.ts';
import { GRAPH_ASSISTANT_NAMESPACE, uuidv5 } from '../ids/index.ts';

/** A graph's default assistant id, as LangGraph derives it: UUIDv5 of the graph id. */
export const defaultAssistantId = (graphId: string): string => uuidv5(graphId, GRAPH_ASSISTANT_NAMESPACE);

/**
 * Whether an id lies in the namespace of default assistant ids. Any graph id may be added to the
 * deployment later, and a UUIDv5 does not tell which name it hashes, so every version-5 UUID is
 * reserved: a user may not choose one (it could be the default assistant of a graph to come).
 */
export const isReservedAssistantId = (id: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-5/i.test(id);

/** A user assistant that held a default assistant's id and was given a new one (see ensureDefaultAssistants). */
export interface MovedAssistant {
  graph_id: string;
  user_id: string;
  /** The default id, now the system assistant's. */
  from: string;
  /** The user's assistant's new id; its crons and runs follow it. */
  to: string;
}

/**
 * One system assistant per graph (user_id NULL: visible to every user). Idempotent. The system
 * default always wins its id: a user assistant stored under it (created before ids were
 * reserved, when the graph did not exist yet) is moved to a fresh id with its crons, runs and
 * the threads that name it, and the default takes the id. Answers what was moved.
 */
export async function ensureDefaultAssistants(db: Queryable, graphIds: string[]): Promise<MovedAssistant[]> {
  if (graphIds.length === 0) return [];
  const ids = graphIds.map(defaultAssistantId);
  const { rows: captured } = await db.query<{ assistant_id: string }>(
    `SELECT assistant_id FROM assistants WHERE assistant_id = ANY($1::uuid[]) AND user_id IS NOT NULL`,
    [ids],
  );
  if (captured.length > 0) {
    const reclaim = (client: PoolClient) => reclaimDefaultIds(client, graphIds);
    const isPool = typeof (db as Pool).connect === 'function' && !('release' in db);
    return isPool ? retryConflicts(() => withTransaction(db as Pool, reclaim)) : reclaim(db as PoolClient);
  }
  await insertDefaults(db, graphIds);
  return [];
}

async function insertDefaults(db: Queryable, graphIds: string[]): Promise<void> {
  await db.query(
    `INSERT INTO assistants (assistant_id, graph_id, name, metadata, user_id)
     SELECT g.id, g.graph_id, g.graph_id, '{"created_by": "system"}', NULL
       FROM unnest($1::uuid[], $2::text[]) AS g(id, graph_id)
     ON CONFLICT (assistant_id) DO NOTHING`,
    [graphIds.map(defaultAssistantId), graphIds],
  );
}

/**
 * Moves the user assistants holding default ids to fresh ids, in the lock order of
 * libs/runs/lifecycle.ts (crons, threads, runs by key, then the assistant rows), and inserts
 * the defaults in the same transaction, so no request sees the id free in between.
 */
async function reclaimDefaultIds(client: PoolClient, graphIds: string[]): Promise<MovedAssistant[]> {
  const defaultIds = graphIds.map(defaultAssistantId);
  // Concurrent starters (several api processes) take turns.
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('agentcron.default-assistants'))`);
  const { rows: held } = await client.query<{ assistant_id: string; graph_id: string; user_id: string }>(
    `SELECT assistant_id, graph_id, user_id FROM assistants WHERE assistant_id = ANY($1::uuid[]) AND user_id IS NOT NULL ORDER BY assistant_id`,
    [defaultIds],
  );
  if (held.length === 0) {
    await insertDefaults(client, graphIds);
    return [];
  }
  const old = held.map((h) => h.assistant_id);
  await client.query(`SELECT 1 FROM crons WHERE assistant_id = ANY($1::uuid[]) ORDER BY cron_id FOR UPDATE`, [old]);
  await client.query(`SELECT 1 FROM threads t WHERE t.metadata->>'assistant_id' = ANY($1::text[]) ORDER BY thread_id FOR UPDATE`, [old]);
  await client.query(`SELECT 1 FROM runs WHERE assistant_id = ANY($1::uuid[]) ORDER BY run_id FOR UPDATE`, [old]);
  await client.query(`SELECT 1 FROM assistants WHERE assistant_id = ANY($1::uuid[]) ORDER BY assistant_id FOR UPDATE`, [old]);
  const moved: MovedAssistant[] = [];
  for (const h of held) {
    const { rows } = await client.query<{ to: string }>(
      `INSERT INTO assistants (assistant_id, graph_id, name, description, config, context, metadata, version, user_id, created_at, updated_at)
       SELECT gen_random_uuid(), graph_id, name, description, config, context, metadata, version, user_id, created_at, now()
         FROM assistants WHERE assistant_id = $1
       RETURNING assistant_id AS to`,
      [h.assistant_id],
    );
    const to = rows[0].to;
    await client.query(`UPDATE crons SET assistant_id = $2 WHERE assistant_id = $1`, [h.assistant_id, to]);
    await client.query(
      `UPDATE threads SET metadata = jsonb_set(metadata, '{assistant_id}', to_jsonb($2::text)) WHERE metadata->>'assistant_id' = $1::text AND user_id = $3`,
      [h.assistant_id, to, h.user_id],
    );
    await client.query(`UPDATE runs SET assistant_id = $2 WHERE assistant_id = $1`, [h.assistant_id, to]);
    await client.query(`DELETE FROM assistants WHERE assistant_id = $1`, [h.assistant_id]);
    moved.push({ graph_id: h.graph_id, user_id: h.user_id, from: h.assistant_id, to });
  }
  await insertDefaults(client, graphIds);
  return moved;
}
