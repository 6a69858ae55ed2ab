import { isDeepStrictEqual } from 'node:util';
import type { AgentRegistry, GraphThreadState, HistoryOptions } from '../agents/index.ts';
import type { Pool } from '../db/index.ts';
import { threadGraphId, toCheckpointedThreadState, toThreadState } from './repository.ts';
import type { ThreadResponse, ThreadStateResponse } from './repository.ts';

// A thread's state and history as the API shows them: a LangGraph graph's from its checkpoints,
// any other thread's from the values its last run stored.

/** A LangGraph graph's thread shows its latest checkpoint; any other thread the values its last run stored. */
export async function currentState(pool: Pool, agents: AgentRegistry, thread: ThreadResponse): Promise<ThreadStateResponse> {
  if (agents.keepsCheckpoints()) {
    const graphId = await threadGraphId(pool, thread.thread_id);
    const checkpointed = graphId ? await agents.threadState(graphId, thread.thread_id) : null;
    if (checkpointed) return toCheckpointedThreadState(thread, checkpointed);
  }
  return toThreadState(thread);
}

type CheckpointRef = ThreadStateResponse['checkpoint'];
/** A state in a thread's history: the parent checkpoint is named when known. */
type HistoryState = Omit<ThreadStateResponse, 'parent_checkpoint'> & { parent_checkpoint: CheckpointRef | null };

/** A checkpoint as the history shows it: LangGraph's ThreadState, with the task results and the parent checkpoint. */
function historyState(threadId: string, g: GraphThreadState): HistoryState {
  const ref = (checkpointId: string): CheckpointRef => ({
    thread_id: threadId,
    checkpoint_ns: g.checkpoint_ns,
    checkpoint_id: checkpointId,
    checkpoint_map: null,
  });
  return {
    values: g.values,
    next: g.next,
    tasks: g.tasks.map((t) => ({ ...t, checkpoint: null, state: null, result: t.result ?? null })),
    checkpoint: ref(g.checkpoint_id),
    metadata: g.metadata,
    created_at: g.created_at,
    parent_checkpoint: g.parent_checkpoint_id ? ref(g.parent_checkpoint_id) : null,
    interrupts: g.tasks.flatMap((t) => t.interrupts),
  };
}

/** Whether every key of `wanted` is in `metadata` with an equal value. */
const contains = (metadata: Record<string, unknown>, wanted: Record<string, unknown>) =>
  Object.entries(wanted).every(([k, v]) => isDeepStrictEqual(metadata[k], v));

/** The graph whose checkpoints hold a thread's state: its latest run's, else the one it was created for. */
async function checkpointedGraphOf(pool: Pool, agents: AgentRegistry, thread: ThreadResponse): Promise<string | null> {
  if (!agents.keepsCheckpoints()) return null;
  const fromMetadata = typeof thread.metadata.graph_id === 'string' ? thread.metadata.graph_id : null;
  const graphId = (await threadGraphId(pool, thread.thread_id)) ?? fromMetadata;
  return graphId && agents.keepsCheckpointsOf(graphId) ? graphId : null;
}

/**
 * A thread's history, newest first: a LangGraph graph's checkpoints; for any other thread (or a
 * LangGraph thread with no checkpoint yet) one state, the values its last run stored.
 */
export async function threadHistory(pool: Pool, agents: AgentRegistry, thread: ThreadResponse, opts: HistoryOptions): Promise<HistoryState[]> {
  const graphId = await checkpointedGraphOf(pool, agents, thread);
  if (graphId) {
    const states = await agents.threadHistory(graphId, thread.thread_id, opts);
    if (states?.length || opts.before) return (states ?? []).map((g) => historyState(thread.thread_id, g));
  }
  if (opts.before) return [];
  if (opts.metadata && !contains(thread.metadata, opts.metadata)) return [];
  return [toThreadState(thread)];
}
