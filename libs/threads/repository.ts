import type { GraphThreadState } from '../agents/index.ts';
import type { Queryable } from '../db/index.ts';

// Threads as the LangGraph API shows them. Every query is scoped to the caller's user id: another
// user's thread is indistinguishable from a missing one.

export type ThreadStatus = 'idle' | 'busy' | 'interrupted' | 'error';

export interface ThreadResponse {
  thread_id: string;
  created_at: string;
  updated_at: string;
  state_updated_at: string;
  metadata: Record<string, unknown>;
  status: ThreadStatus;
  values: unknown;
  interrupts: Record<string, unknown[]>;
}

/**
 * LangGraph's ThreadState, as far as the SDK reads it: the latest checkpoint of a LangGraph graph's
 * thread, else the values the last run stored (no checkpoint history is served).
 */
export interface ThreadStateResponse {
  values: unknown;
  next: string[];
  tasks: unknown[];
  checkpoint: { thread_id: string; checkpoint_ns: string; checkpoint_id: string | null; checkpoint_map: null };
  metadata: Record<string, unknown>;
  created_at: string;
  parent_checkpoint: null;
  interrupts: unknown[];
}

interface ThreadRow {
  thread_id: string;
  created_at: Date;
  updated_at: Date;
  metadata: Record<string, unknown>;
  status: ThreadStatus;
  values: unknown;
}

const THREAD_COLUMNS = `thread_id, created_at, updated_at, metadata, status, "values"`;

export function toThreadResponse(r: ThreadRow): ThreadResponse {
  return {
    thread_id: r.thread_id,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    // Values change only when a run ends, which also bumps updated_at.
    state_updated_at: r.updated_at.toISOString(),
    metadata: r.metadata,
    status: r.status,
    // A thread no run has written yet has empty values, as in LangGraph.
    values: r.values ?? {},
    interrupts: {},
  };
}

export function toThreadState(t: ThreadResponse): ThreadStateResponse {
  return {
    values: t.values,
    next: [],
    tasks: [],
    checkpoint: { thread_id: t.thread_id, checkpoint_ns: '', checkpoint_id: null, checkpoint_map: null },
    metadata: t.metadata,
    created_at: t.state_updated_at,
    parent_checkpoint: null,
    interrupts: [],
  };
}

/** The state of a thread whose graph keeps checkpoints, as the latest checkpoint has it. */
export function toCheckpointedThreadState(t: ThreadResponse, g: GraphThreadState): ThreadStateResponse {
  return {
    values: g.values,
    next: g.next,
    tasks: g.tasks.map((task) => ({ ...task, checkpoint: null, state: null, result: null })),
    checkpoint: { thread_id: t.thread_id, checkpoint_ns: g.checkpoint_ns, checkpoint_id: g.checkpoint_id, checkpoint_map: null },
    // As in LangGraph: the checkpoint's metadata (source, step ...), not the thread's.
    metadata: g.metadata,
    created_at: g.created_at,
    parent_checkpoint: null,
    interrupts: g.tasks.flatMap((task) => task.interrupts),
  };
}

/** The graph of the thread's latest run: whose checkpoints its state is read from. */
export async function threadGraphId(db: Queryable, threadId: string): Promise<string | null> {
  const { rows } = await db.query<{ graph_id: string }>(
    `SELECT a.graph_id FROM runs r JOIN assistants a USING (assistant_id) WHERE r.thread_id = $1 ORDER BY r.created_at DESC LIMIT 1`,
    [threadId],
  );
  return rows[0]?.graph_id ?? null;
}

export async function getThread(db: Queryable, threadId: string, userId: string): Promise<ThreadResponse | null> {
  const { rows } = await db.query<ThreadRow>(`SELECT ${THREAD_COLUMNS} FROM threads WHERE thread_id = $1 AND user_id = $2`, [threadId, userId]);
  return rows[0] ? toThreadResponse(rows[0]) : null;
}

/** The caller's thread, row-locked until the transaction ends: run creation decides on its active runs under this lock. */
export async function lockThread(db: Queryable, threadId: string, userId: string): Promise<ThreadResponse | null> {
  const { rows } = await db.query<ThreadRow>(`SELECT ${THREAD_COLUMNS} FROM threads WHERE thread_id = $1 AND user_id = $2 FOR UPDATE`, [threadId, userId]);
  return rows[0] ? toThreadResponse(rows[0]) : null;
}

export interface NewThread {
  thread_id: string;
  user_id: string;
  metadata: Record<string, unknown>;
  /** Initial values (from `supersteps`); null for an empty thread. */
  values: unknown;
}

/** Inserts a thread; null when its id is taken (by anyone: ids are global). */
export async function insertThread(db: Queryable, t: NewThread): Promise<ThreadResponse | null> {
  const { rows } = await db.query<ThreadRow>(
    `INSERT INTO threads (thread_id, user_id, metadata, "values") VALUES ($1, $2, $3, $4)
     ON CONFLICT (thread_id) DO NOTHING
     RETURNING ${THREAD_COLUMNS}`,
    [t.thread_id, t.user_id, JSON.stringify(t.metadata), t.values === null || t.values === undefined ? null : JSON.stringify(t.values)],
  );
  return rows[0] ? toThreadResponse(rows[0]) : null;
}

/** Merges metadata into the caller's thread (LangGraph's PATCH semantics: keys sent replace, others stay). */
export async function patchThread(db: Queryable, threadId: string, userId: string, metadata: Record<string, unknown> | null): Promise<ThreadResponse | null> {
  const { rows } = await db.query<ThreadRow>(
    `UPDATE threads SET metadata = metadata || COALESCE($3::jsonb, '{}'), updated_at = now()
      WHERE thread_id = $1 AND user_id = $2
     RETURNING ${THREAD_COLUMNS}`,
    [threadId, userId, metadata ? JSON.stringify(metadata) : null],
  );
  return rows[0] ? toThreadResponse(rows[0]) : null;
}

/**
 * Deletes the caller's thread; its runs and crons go with it (foreign keys cascade), its LangGraph
 * checkpoints too (the trigger libs/agents/checkpointer.ts installs).
 */
export async function deleteThread(db: Queryable, threadId: string, userId: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM threads WHERE thread_id = $1 AND user_id = $2`, [threadId, userId]);
  return (rowCount ?? 0) > 0;
}

export interface ThreadFilter {
  metadata?: Record<string, unknown> | null;
  values?: Record<string, unknown> | null;
  status?: ThreadStatus | null;
  ids?: string[] | null;
}

export type ThreadSortBy = 'thread_id' | 'status' | 'created_at' | 'updated_at' | 'state_updated_at';

const SORT_COLUMNS: Record<ThreadSortBy, string> = {
  thread_id: 'thread_id',
  status: 'status',
  created_at: 'created_at',
  updated_at: 'updated_at',
  state_updated_at: 'updated_at',
};

// Absent filters are NULL parameters, so one statement serves every combination.
const FILTER = `user_id = $1
  AND ($2::jsonb IS NULL OR metadata @> $2::jsonb)
  AND ($3::jsonb IS NULL OR "values" @> $3::jsonb)
  AND ($4::text IS NULL OR status = $4)
  AND ($5::uuid[] IS NULL OR thread_id = ANY($5::uuid[]))`;

const filterParams = (userId: string, f: ThreadFilter) => [
  userId,
  f.metadata ? JSON.stringify(f.metadata) : null,
  f.values ? JSON.stringify(f.values) : null,
  f.status ?? null,
  f.ids ?? null,
];

export async function searchThreads(
  db: Queryable,
  userId: string,
  filter: ThreadFilter,
  page: { limit: number; offset: number; sort_by: ThreadSortBy; sort_order: 'asc' | 'desc' },
): Promise<ThreadResponse[]> {
  // Only whitelisted column names are spliced in; thread_id breaks ties so pages are stable.
  const order = `${SORT_COLUMNS[page.sort_by]} ${page.sort_order === 'asc' ? 'ASC' : 'DESC'}, thread_id`;
  const { rows } = await db.query<ThreadRow>(`SELECT ${THREAD_COLUMNS} FROM threads WHERE ${FILTER} ORDER BY ${order} LIMIT $6 OFFSET $7`, [
    ...filterParams(userId, filter),
    page.limit,
    page.offset,
  ]);
  return rows.map(toThreadResponse);
}

export async function countThreads(db: Queryable, userId: string, filter: ThreadFilter): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM threads WHERE ${FILTER}`, filterParams(userId, filter));
  return rows[0].n;
}
