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

/** Graph id → agent. */
export class AgentRegistry {
  #agents = new Map<string, Agent>();

  register(graphId: string, agent: Agent): this {
    this.#agents.set(graphId, agent);
    return this;
  }

  get(graphId: string): Agent | undefined {
    return this.#agents.get(graphId);
  }

  graphIds(): string[] {
    return [...this.#agents.keys()].sort();
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
