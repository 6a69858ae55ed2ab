import type { Logger } from '../log/index.ts';
import { emptyFlowConfig } from './flow.ts';
import type { FlowConfig } from './flow.ts';

/** What an agent is handed besides its input. */
export interface AgentContext {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  cron_id: string | null;
  scheduled_for: Date | null;
  /** The thread's current values (null on a fresh thread). */
  values: Record<string, unknown> | null;
  config: Record<string, unknown>;
  context: Record<string, unknown>;
  /** Aborted on timeout, cancellation or shutdown: stop work and return or throw. */
  signal: AbortSignal;
  /** Bound to the run: every line carries run_id and cron_id. */
  logger: Logger;
  /** Same on every attempt of the same occurrence (cron_id + scheduled_for, or run_id): de-duplicate outside effects with it. */
  idempotency_key: string;
}

/**
 * Thrown by an agent for a transient failure (a provider's 429 or 503): the run is retried under
 * its retry policy, no earlier than `retryAfterSeconds` when given (the provider's Retry-After).
 * Any error with `retryable: true` is treated the same.
 */
export class RetryableError extends Error {
  override name = 'RetryableError';
  readonly retryable = true;
  readonly retryAfterSeconds: number | null;
  constructor(message: string, opts: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.retryAfterSeconds = opts.retryAfterSeconds ?? null;
  }
}

/** An agent returns the thread's new values. */
export type Agent = (input: unknown, ctx: AgentContext) => Promise<unknown>;

/**
 * A graph's state as its checkpoints show it (LangGraph graphs only): what
 * `GET /threads/{id}/state` answers when the thread has checkpoints.
 */
export interface GraphThreadState {
  values: unknown;
  next: string[];
  /** `result`: what the task wrote, once it has run (the history's and the stream's `updates`). */
  tasks: { id: string; name: string; error: string | null; interrupts: unknown[]; path?: unknown[]; result?: unknown }[];
  checkpoint_id: string;
  checkpoint_ns: string;
  /** The checkpoint this one follows (null for a thread's first). */
  parent_checkpoint_id?: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
}

/** Which checkpoints of a thread a history read returns, newest first. */
export interface HistoryOptions {
  limit: number;
  /** Only checkpoints older than this checkpoint id. */
  before?: string | null;
  /** Only checkpoints whose metadata contains these keys and values. */
  metadata?: Record<string, unknown> | null;
}

/** What a graph that keeps checkpoints offers besides being run. */
export interface CheckpointedGraph {
  /** The thread's latest state; null when the thread has no checkpoint of this graph. */
  threadState(threadId: string): Promise<GraphThreadState | null>;
  /** The thread's checkpoints, newest first ([] when it has none). */
  threadHistory?(threadId: string, opts: HistoryOptions): Promise<GraphThreadState[]>;
  /** The ids of a checkpoint's tasks whose writes are saved (a task that wrote nothing saves a marker). */
  writtenTasks?(threadId: string, checkpointId: string): Promise<string[]>;
}

/** A graph as LangGraph's drawable JSON shows it (`GET /assistants/{id}/graph`). */
export interface DrawableGraph {
  nodes: unknown[];
  edges: unknown[];
}

/** JSON schemas of a graph's input, output, state and config, where known. */
export interface GraphSchemas {
  input: Record<string, unknown> | null;
  output: Record<string, unknown> | null;
  state: Record<string, unknown> | null;
  config: Record<string, unknown> | null;
}

/** What the API may show of a graph besides running it. */
export interface GraphDescription {
  kind: 'builtin' | 'function' | 'langgraph' | 'remote';
  /** Nodes and edges (LangGraph graphs); absent: the graph is one opaque node. */
  drawable?(opts: { xray?: boolean | number }): Promise<DrawableGraph>;
  /** Schemas (LangGraph graphs); absent: nothing is known. */
  schemas?(): Promise<GraphSchemas>;
}

/** Graph id → agent, plus the graphs whose state lives in checkpoints. */
export class AgentRegistry {
  /** Limits and per-graph flow settings from agentcron.json (docs/flow-control.md). */
  flow: FlowConfig = emptyFlowConfig();
  #agents = new Map<string, Agent>();
  #checkpointed = new Map<string, CheckpointedGraph>();
  #described = new Map<string, GraphDescription>();

  register(graphId: string, agent: Agent, checkpointed?: CheckpointedGraph, description?: GraphDescription): this {
    this.#agents.set(graphId, agent);
    if (checkpointed) this.#checkpointed.set(graphId, checkpointed);
    else this.#checkpointed.delete(graphId);
    if (description) this.#described.set(graphId, description);
    else this.#described.delete(graphId);
    return this;
  }

  /** What is known of a graph besides its agent (built-in graphs: kind only). */
  describe(graphId: string): GraphDescription | undefined {
    if (!this.#agents.has(graphId)) return undefined;
    return this.#described.get(graphId) ?? { kind: 'builtin' };
  }

  /** Whether this graph's threads keep their state in checkpoints. */
  keepsCheckpointsOf(graphId: string): boolean {
    return this.#checkpointed.has(graphId);
  }

  get(graphId: string): Agent | undefined {
    return this.#agents.get(graphId);
  }

  graphIds(): string[] {
    return [...this.#agents.keys()].sort();
  }

  /** Whether any graph needs the checkpointer (processes open one only then). */
  keepsCheckpoints(): boolean {
    return this.#checkpointed.size > 0;
  }

  /** The thread's checkpointed state under this graph; null when the graph keeps none or the thread has none. */
  async threadState(graphId: string, threadId: string): Promise<GraphThreadState | null> {
    return (await this.#checkpointed.get(graphId)?.threadState(threadId)) ?? null;
  }

  /** The thread's checkpoints under this graph, newest first; null when the graph keeps none. */
  async threadHistory(graphId: string, threadId: string, opts: HistoryOptions): Promise<GraphThreadState[] | null> {
    const graph = this.#checkpointed.get(graphId);
    if (!graph?.threadHistory) return null;
    return graph.threadHistory(threadId, opts);
  }

  /** The ids of a checkpoint's tasks whose writes are saved; null when the graph cannot tell. */
  async writtenTasks(graphId: string, threadId: string, checkpointId: string): Promise<string[] | null> {
    const graph = this.#checkpointed.get(graphId);
    if (!graph?.writtenTasks) return null;
    return graph.writtenTasks(threadId, checkpointId);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `echo`: answers its input as the thread's new values, to smoke-test a deployment.
 * `{"error": "msg"}` fails with msg; `{"sleep_ms": n}` waits n ms first, honouring cancellation.
 */
export const echo: Agent = async (input, ctx) => {
  const body = (input ?? {}) as Record<string, unknown>;
  if (typeof body.sleep_ms === 'number' && body.sleep_ms > 0) await sleep(body.sleep_ms, ctx.signal);
  if (typeof body.error === 'string') throw new Error(body.error);
  return input ?? {};
};

/** The graphs every deployment has. */
export function builtinAgents(): AgentRegistry {
  return new AgentRegistry().register('echo', echo);
}
