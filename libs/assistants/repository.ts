import type { Queryable } from '../db/index.ts';
import { isUuid } from '../ids/index.ts';
import { defaultAssistantId, isReservedAssistantId } from './assistants.ts';

// Assistants as the LangGraph API shows them. A user sees their own assistants and the system
// ones (each graph's default assistant, user_id NULL); another user's assistant is as absent as
// a missing one. System assistants are read-only for users.

export interface AssistantResponse {
  assistant_id: string;
  graph_id: string;
  name: string;
  description: string | null;
  config: Record<string, unknown>;
  context: Record<string, unknown>;
  metadata: Record<string, unknown>;
  version: number;
  created_at: string;
  updated_at: string;
}

interface AssistantRow {
  assistant_id: string;
  graph_id: string;
  name: string;
  description: string | null;
  config: Record<string, unknown>;
  context: Record<string, unknown>;
  metadata: Record<string, unknown>;
  version: number;
  user_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** An assistant and whether the caller may change it. */
export interface VisibleAssistant {
  assistant: AssistantResponse;
  /** A graph's default assistant: visible to all, changed by nobody. */
  system: boolean;
}

const COLUMNS = `assistant_id, graph_id, name, description, config, context, metadata, version, user_id, created_at, updated_at`;

export function toAssistantResponse(r: AssistantRow): AssistantResponse {
  return {
    assistant_id: r.assistant_id,
    graph_id: r.graph_id,
    name: r.name,
    description: r.description,
    config: r.config,
    context: r.context,
    metadata: r.metadata,
    version: r.version,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

const visible = (r: AssistantRow): VisibleAssistant => ({ assistant: toAssistantResponse(r), system: r.user_id === null });

/**
 * The assistant id a reference names: an assistant UUID as is, anything else a graph id, which
 * names that graph's default assistant (UUIDv5 of the graph id, as in LangGraph).
 */
export const resolveAssistantId = (idOrGraphId: string): string => (isUuid(idOrGraphId) ? idOrGraphId.toLowerCase() : defaultAssistantId(idOrGraphId));

/** The assistant a reference (UUID or graph id) names, if the caller can see it. */
export async function getAssistant(db: Queryable, idOrGraphId: string, userId: string): Promise<VisibleAssistant | null> {
  const { rows } = await db.query<AssistantRow>(`SELECT ${COLUMNS} FROM assistants WHERE assistant_id = $1 AND (user_id = $2 OR user_id IS NULL)`, [
    resolveAssistantId(idOrGraphId),
    userId,
  ]);
  return rows[0] ? visible(rows[0]) : null;
}

export interface NewAssistant {
  assistant_id: string;
  graph_id: string;
  name: string;
  description: string | null;
  config: Record<string, unknown>;
  context: Record<string, unknown>;
  metadata: Record<string, unknown>;
  user_id: string;
}

/** A request the assistants' rules refuse: answered as a 422 (it carries its status, like any client error). */
export class AssistantInputError extends Error {
  readonly status = 422;
  override name = 'AssistantInputError';
}

/**
 * Inserts an assistant; null when its id is taken (by anyone: ids are global). A free id in the
 * default-id namespace (any UUIDv5: the default assistant of a graph the operator may add later)
 * is refused with AssistantInputError (422), so no user can hold a graph's default id.
 */
export async function insertAssistant(db: Queryable, a: NewAssistant): Promise<AssistantResponse | null> {
  if (isReservedAssistantId(a.assistant_id)) {
    const { rowCount } = await db.query(`SELECT 1 FROM assistants WHERE assistant_id = $1`, [a.assistant_id]);
    if (rowCount) return null;
    throw new AssistantInputError(
      `body.assistant_id: ${a.assistant_id} is a version-5 UUID, reserved for graphs' default assistants (the UUIDv5 of a graph id); choose ` +
        `another id (a UUIDv4) or leave it out`,
    );
  }
  const { rows } = await db.query<AssistantRow>(
    `INSERT INTO assistants (assistant_id, graph_id, name, description, config, context, metadata, user_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (assistant_id) DO NOTHING
     RETURNING ${COLUMNS}`,
    [a.assistant_id, a.graph_id, a.name, a.description, JSON.stringify(a.config), JSON.stringify(a.context), JSON.stringify(a.metadata), a.user_id],
  );
  return rows[0] ? toAssistantResponse(rows[0]) : null;
}

export interface AssistantPatch {
  graph_id?: string | null;
  name?: string | null;
  description?: string | null;
  config?: Record<string, unknown> | null;
  context?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
}

/**
 * Changes the caller's own assistant and bumps its version. Fields not sent stay; config and
 * context sent replace the stored ones; metadata is merged (LangGraph's PATCH semantics).
 */
export async function patchAssistant(db: Queryable, assistantId: string, userId: string, p: AssistantPatch): Promise<AssistantResponse | null> {
  const { rows } = await db.query<AssistantRow>(
    `UPDATE assistants SET
        graph_id = COALESCE($3, graph_id),
        name = COALESCE($4, name),
        description = COALESCE($5, description),
        config = COALESCE($6::jsonb, config),
        context = COALESCE($7::jsonb, context),
        metadata = metadata || COALESCE($8::jsonb, '{}'),
        version = version + 1,
        updated_at = now()
      WHERE assistant_id = $1 AND user_id = $2
     RETURNING ${COLUMNS}`,
    [
      assistantId,
      userId,
      p.graph_id ?? null,
      p.name ?? null,
      p.description ?? null,
      p.config ? JSON.stringify(p.config) : null,
      p.context ? JSON.stringify(p.context) : null,
      p.metadata ? JSON.stringify(p.metadata) : null,
    ],
  );
  return rows[0] ? toAssistantResponse(rows[0]) : null;
}

/**
 * Deletes the caller's own assistant; its crons and runs go with it (foreign keys cascade).
 * With deleteThreads, also the caller's threads whose metadata names it (LangGraph's `delete_threads`).
 */
export async function deleteAssistant(db: Queryable, assistantId: string, userId: string, deleteThreads: boolean): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM assistants WHERE assistant_id = $1 AND user_id = $2`, [assistantId, userId]);
  if (!rowCount) return false;
  if (deleteThreads) {
    await db.query(`DELETE FROM threads WHERE user_id = $1 AND metadata->>'assistant_id' = $2`, [userId, assistantId]);
  }
  return true;
}

export interface AssistantFilter {
  graph_id?: string | null;
  name?: string | null;
  metadata?: Record<string, unknown> | null;
}

export type AssistantSortBy = 'assistant_id' | 'graph_id' | 'name' | 'created_at' | 'updated_at';

// Absent filters are NULL parameters, so one statement serves every combination; the name
// filter is a case-insensitive substring match.
const FILTER = `(user_id = $1 OR user_id IS NULL)
  AND ($2::text IS NULL OR graph_id = $2)
  AND ($3::text IS NULL OR strpos(lower(name), lower($3)) > 0)
  AND ($4::jsonb IS NULL OR metadata @> $4::jsonb)`;

const filterParams = (userId: string, f: AssistantFilter) => [userId, f.graph_id ?? null, f.name ?? null, f.metadata ? JSON.stringify(f.metadata) : null];

export async function searchAssistants(
  db: Queryable,
  userId: string,
  filter: AssistantFilter,
  page: { limit: number; offset: number; sort_by: AssistantSortBy; sort_order: 'asc' | 'desc' },
): Promise<AssistantResponse[]> {
  // sort_by is one of the whitelisted column names (checked by the request schema).
  const order = `${page.sort_by} ${page.sort_order === 'asc' ? 'ASC' : 'DESC'}, assistant_id`;
  const { rows } = await db.query<AssistantRow>(`SELECT ${COLUMNS} FROM assistants WHERE ${FILTER} ORDER BY ${order} LIMIT $5 OFFSET $6`, [
    ...filterParams(userId, filter),
    page.limit,
    page.offset,
  ]);
  return rows.map(toAssistantResponse);
}

export async function countAssistants(db: Queryable, userId: string, filter: AssistantFilter): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM assistants WHERE ${FILTER}`, filterParams(userId, filter));
  return rows[0].n;
}
