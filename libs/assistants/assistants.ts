import type { Queryable } from '../db/index.ts';
import { GRAPH_ASSISTANT_NAMESPACE, uuidv5 } from '../ids/index.ts';

/** A graph's default assistant id, as LangGraph derives it: UUIDv5 of the graph id. */
export const defaultAssistantId = (graphId: string): string => uuidv5(graphId, GRAPH_ASSISTANT_NAMESPACE);

/** One system assistant per graph (user_id NULL: visible to every user). Idempotent. */
export async function ensureDefaultAssistants(db: Queryable, graphIds: string[]): Promise<void> {
  if (graphIds.length === 0) return;
  await db.query(
    `INSERT INTO assistants (assistant_id, graph_id, name, metadata, user_id)
     SELECT g.id, g.graph_id, g.graph_id, '{"created_by": "system"}', NULL
       FROM unnest($1::uuid[], $2::text[]) AS g(id, graph_id)
     ON CONFLICT (assistant_id) DO NOTHING`,
    [graphIds.map(defaultAssistantId), graphIds],
  );
}
