import type { Agent, AgentContext, CheckpointedGraph, DrawableGraph, GraphDescription, GraphSchemas, GraphThreadState, HistoryOptions } from './agents.ts';

// LangGraph.js graphs as agents. A graph keeps its state in the shared PostgreSQL checkpointer,
// keyed by the agentcron thread id, so each run of a thread cron continues where the last one
// ended; the state the graph returns also becomes the thread's values.

/** The part of a compiled LangGraph graph (Pregel) agentcron uses. */
export interface CompiledGraph {
  invoke(input: unknown, config: Record<string, unknown>): Promise<unknown>;
  getState(config: { configurable: Record<string, unknown> }): Promise<StateSnapshotLike>;
  /** Set by `compile({ checkpointer })`; false means the graph never keeps state. */
  checkpointer?: unknown;
  /** The thread's checkpoints, newest first (LangGraph's Pregel has it). */
  getStateHistory?(config: { configurable: Record<string, unknown> }, options?: Record<string, unknown>): AsyncIterable<StateSnapshotLike>;
  /** The drawable graph (nodes, edges) of `GET /assistants/{id}/graph`. */
  getGraphAsync?(config: Record<string, unknown>): Promise<{ toJSON(): unknown }>;
  /** The StateGraph it was compiled from: where its state, input and output definitions live. */
  builder?: unknown;
}

interface StateSnapshotLike {
  values: unknown;
  next: string[];
  tasks: { id: string; name: string; error?: unknown; interrupts?: unknown[]; path?: unknown[]; result?: unknown }[];
  metadata?: Record<string, unknown>;
  config?: { configurable?: Record<string, unknown> };
  parentConfig?: { configurable?: Record<string, unknown> };
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
    async threadHistory(threadId: string, opts: HistoryOptions) {
      if (typeof graph.getStateHistory !== 'function') return [];
      const options: Record<string, unknown> = { limit: opts.limit };
      if (opts.before) options.before = { configurable: { thread_id: threadId, checkpoint_ns: '', checkpoint_id: opts.before } };
      if (opts.metadata && Object.keys(opts.metadata).length) options.filter = opts.metadata;
      const states: GraphThreadState[] = [];
      for await (const snapshot of graph.getStateHistory({ configurable: { thread_id: threadId, checkpoint_ns: '' } }, options)) {
        const checkpointId = snapshot.config?.configurable?.checkpoint_id;
        if (typeof checkpointId === 'string') states.push(toGraphThreadState(snapshot, checkpointId));
        if (states.length >= opts.limit) break;
      }
      return states;
    },
    async writtenTasks(threadId: string, checkpointId: string) {
      const saver = graph.checkpointer as { getTuple?(config: unknown): Promise<{ pendingWrites?: [string, string, unknown][] } | undefined> };
      if (typeof saver?.getTuple !== 'function') return [];
      const tuple = await saver.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: '', checkpoint_id: checkpointId } });
      return [...new Set((tuple?.pendingWrites ?? []).map(([taskId]) => taskId))];
    },
  };
}

/** What the API shows of a LangGraph graph: its drawable graph and the schemas its definitions give. */
export function describeLangGraph(graph: CompiledGraph): GraphDescription {
  return {
    kind: 'langgraph',
    async drawable({ xray }) {
      if (typeof graph.getGraphAsync !== 'function') return { nodes: [], edges: [] };
      const drawn = (await graph.getGraphAsync(xray === undefined ? {} : { xray })).toJSON() as Partial<DrawableGraph>;
      return { nodes: drawn.nodes ?? [], edges: drawn.edges ?? [] };
    },
    schemas: () => graphSchemas(graph),
  };
}

/**
 * JSON schemas from the graph's builder: a StateSchema's own JSON schema, a zod schema converted,
 * or else an object schema naming the channels of an Annotation (each of any type).
 */
async function graphSchemas(graph: CompiledGraph): Promise<GraphSchemas> {
  const builder = isObject(graph.builder) ? graph.builder : {};
  const toJson = async (runtime: unknown, definition: unknown): Promise<Record<string, unknown> | null> => {
    try {
      for (const candidate of [definition, runtime]) {
        if (isObject(candidate) && typeof candidate.getJsonSchema === 'function')
          return (candidate as { getJsonSchema: () => Record<string, unknown> }).getJsonSchema();
      }
      if (isObject(runtime) && ('_def' in runtime || '_zod' in runtime)) {
        const { toJsonSchema } = await import('@langchain/core/utils/json_schema');
        return toJsonSchema(runtime);
      }
      if (isObject(definition)) {
        const keys = Object.keys(definition).filter((k) => !k.startsWith('__'));
        return { type: 'object', properties: Object.fromEntries(keys.map((k) => [k, {}])) };
      }
    } catch {
      // A schema that cannot be converted is simply not known.
    }
    return null;
  };
  const state = await toJson(builder._schemaRuntimeDefinition, builder._schemaDefinition);
  return {
    state,
    input: (await toJson(builder._inputRuntimeDefinition, builder._inputDefinition)) ?? state,
    output: (await toJson(builder._outputRuntimeDefinition, builder._outputDefinition)) ?? state,
    config: await toJson(builder._configRuntimeSchema, builder._configSchema),
  };
}

function toGraphThreadState(s: StateSnapshotLike, checkpointId: string): GraphThreadState {
  const ns = s.config?.configurable?.checkpoint_ns;
  const parent = s.parentConfig?.configurable?.checkpoint_id;
  return {
    values: s.values ?? {},
    next: s.next ?? [],
    tasks: (s.tasks ?? []).map((t) => ({
      id: t.id,
      name: t.name,
      error:
        t.error === undefined || t.error === null
          ? null
          : t.error instanceof Error
            ? t.error.message
            : typeof t.error === 'string'
              ? t.error
              : JSON.stringify(t.error),
      interrupts: t.interrupts ?? [],
      ...(t.path ? { path: t.path } : {}),
      ...(t.result !== undefined ? { result: t.result } : {}),
    })),
    checkpoint_id: checkpointId,
    checkpoint_ns: typeof ns === 'string' ? ns : '',
    parent_checkpoint_id: typeof parent === 'string' ? parent : null,
    metadata: s.metadata ?? {},
    created_at: s.createdAt ?? new Date().toISOString(),
  };
}
