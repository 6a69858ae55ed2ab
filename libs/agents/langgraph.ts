import type { Agent, AgentContext, CheckpointedGraph, GraphThreadState } from './agents.ts';

// LangGraph.js graphs as agents. A graph keeps its state in the shared PostgreSQL checkpointer,
// keyed by the agentcron thread id, so each run of a thread cron continues where the last one
// ended; the state the graph returns also becomes the thread's values.

/** The part of a compiled LangGraph graph (Pregel) agentcron uses. */
export interface CompiledGraph {
  invoke(input: unknown, config: Record<string, unknown>): Promise<unknown>;
  getState(config: { configurable: Record<string, unknown> }): Promise<StateSnapshotLike>;
  /** Set by `compile({ checkpointer })`; false means the graph never keeps state. */
  checkpointer?: unknown;
}

interface StateSnapshotLike {
  values: unknown;
  next: string[];
  tasks: { id: string; name: string; error?: unknown; interrupts?: unknown[] }[];
  metadata?: Record<string, unknown>;
  config?: { configurable?: Record<string, unknown> };
  createdAt?: string;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/** A compiled graph: it runs (invoke) and has checkpointed state (getState), like LangGraph's Pregel. */
export function isCompiledGraph(x: unknown): x is CompiledGraph {
  return isObject(x) && typeof x.invoke === 'function' && typeof x.getState === 'function' && (typeof x.getGraph === 'function' || 'builder' in x);
}

/** An uncompiled StateGraph, as langgraph.json also accepts: it only needs compile(). */
export function isGraphBuilder(x: unknown): x is { compile(): unknown } {
  return isObject(x) && typeof x.compile === 'function' && typeof x.addNode === 'function' && typeof x.invoke !== 'function';
}

/** Whether the graph keeps state; `compile({ checkpointer: false })` opts out. */
export function keepsState(graph: CompiledGraph): boolean {
  return graph.checkpointer !== false;
}

/**
 * The RunnableConfig of a run, as the LangGraph server builds it: the run's `configurable` with
 * the thread id (which cannot be overridden: it selects the checkpoints), the run's ids for nodes
 * that want them, recursion_limit and tags, the runtime context and the abort signal.
 */
export function invokeConfig(ctx: AgentContext): Record<string, unknown> {
  const { configurable, recursion_limit, tags } = ctx.config;
  const ids = { run_id: ctx.run_id, assistant_id: ctx.assistant_id, graph_id: ctx.graph_id, cron_id: ctx.cron_id };
  return {
    configurable: { ...(isObject(configurable) ? configurable : {}), ...ids, idempotency_key: ctx.idempotency_key, thread_id: ctx.thread_id },
    ...(typeof recursion_limit === 'number' ? { recursionLimit: recursion_limit } : {}),
    ...(Array.isArray(tags) ? { tags } : {}),
    metadata: { ...ids, thread_id: ctx.thread_id },
    context: ctx.context,
    signal: ctx.signal,
  };
}

/** Runs the graph on the run's thread; what it returns (its output state) is the thread's new values. */
export function langGraphAgent(graph: CompiledGraph): Agent {
  return (input, ctx) => graph.invoke(input ?? null, invokeConfig(ctx));
}

/** Reads a thread's latest checkpoint through the graph, so values show its channels as it defines them. */
export function checkpointedGraph(graph: CompiledGraph): CheckpointedGraph {
  return {
    async threadState(threadId) {
      const snapshot = await graph.getState({ configurable: { thread_id: threadId } });
      const checkpointId = snapshot.config?.configurable?.checkpoint_id;
      if (typeof checkpointId !== 'string') return null;
      return toGraphThreadState(snapshot, checkpointId);
    },
  };
}

function toGraphThreadState(s: StateSnapshotLike, checkpointId: string): GraphThreadState {
  const ns = s.config?.configurable?.checkpoint_ns;
  return {
    values: s.values ?? {},
    next: s.next ?? [],
    tasks: (s.tasks ?? []).map((t) => ({
      id: t.id,
      name: t.name,
      error: t.error === undefined || t.error === null ? null : t.error instanceof Error ? t.error.message : String(t.error),
      interrupts: t.interrupts ?? [],
    })),
    checkpoint_id: checkpointId,
    checkpoint_ns: typeof ns === 'string' ? ns : '',
    metadata: s.metadata ?? {},
    created_at: s.createdAt ?? new Date().toISOString(),
  };
}
