import type { Logger } from '../log/index.ts';

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

/** An agent returns the thread's new values. */
export type Agent = (input: unknown, ctx: AgentContext) => Promise<unknown>;

/**
 * A graph's state as its checkpoints show it (LangGraph graphs only): what
 * `GET /threads/{id}/state` answers when the thread has checkpoints.
 */
export interface GraphThreadState {
  values: unknown;
  next: string[];
  tasks: { id: string; name: string; error: string | null; interrupts: unknown[] }[];
  checkpoint_id: string;
  checkpoint_ns: string;
  metadata: Record<string, unknown>;
  created_at: string;
}

/** What a graph that keeps checkpoints offers besides being run. */
export interface CheckpointedGraph {
  /** The thread's latest state; null when the thread has no checkpoint of this graph. */
  threadState(threadId: string): Promise<GraphThreadState | null>;
}

/** Graph id → agent, plus the graphs whose state lives in checkpoints. */
export class AgentRegistry {
  #agents = new Map<string, Agent>();
  #checkpointed = new Map<string, CheckpointedGraph>();

  register(graphId: string, agent: Agent, checkpointed?: CheckpointedGraph): this {
    this.#agents.set(graphId, agent);
    if (checkpointed) this.#checkpointed.set(graphId, checkpointed);
    else this.#checkpointed.delete(graphId);
    return this;
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
