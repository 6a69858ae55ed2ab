import type { Agent, AgentContext } from './agents.ts';

// Agents written in other languages or running elsewhere: agentcron POSTs the run to a URL and
// stores the JSON answer as the thread's new values.

export interface RemoteAgentSpec {
  url: string;
  /** Gives up after this long; the run's own timeout and cancellation abort it too. */
  timeoutMs: number | null;
  headers: Record<string, string>;
}

export class RemoteAgentError extends Error {
  override name = 'RemoteAgentError';
  /** The HTTP status the agent answered, when it answered. */
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

const EXCERPT_CHARS = 200;

/** The start of a response body on one line: enough to tell what went wrong, never the whole body. */
export function excerpt(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  return line.length > EXCERPT_CHARS ? `${line.slice(0, EXCERPT_CHARS)}…` : line;
}

/** What the remote agent receives: everything a local agent gets in its input and context. */
export function remoteRequestBody(input: unknown, ctx: AgentContext): Record<string, unknown> {
  return {
    input: input ?? null,
    values: ctx.values,
    config: ctx.config,
    context: ctx.context,
    run_id: ctx.run_id,
    thread_id: ctx.thread_id,
    assistant_id: ctx.assistant_id,
    graph_id: ctx.graph_id,
    cron_id: ctx.cron_id,
    scheduled_for: ctx.scheduled_for ? ctx.scheduled_for.toISOString() : null,
    idempotency_key: ctx.idempotency_key,
  };
}

export function remoteAgent(spec: RemoteAgentSpec): Agent {
  return async (input, ctx) => {
    const signals = [ctx.signal];
    if (spec.timeoutMs !== null) signals.push(AbortSignal.timeout(spec.timeoutMs));
    const signal = AbortSignal.any(signals);
    let res: Response;
    let text: string;
    try {
      res = await fetch(spec.url, {
        method: 'POST',
        headers: { ...spec.headers, 'content-type': 'application/json', accept: 'application/json', 'idempotency-key': ctx.idempotency_key },
        body: JSON.stringify(remoteRequestBody(input, ctx)),
        signal,
      });
      text = await res.text();
    } catch (err) {
      // The run's own abort (timeout, cancel, shutdown) is the worker's to report, as for any agent.
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (signal.aborted) throw new RemoteAgentError(`remote agent did not answer within ${spec.timeoutMs! / 1000}s`);
      throw new RemoteAgentError(`remote agent unreachable: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`);
    }
    if (!res.ok) throw new RemoteAgentError(`remote agent answered ${res.status}: ${excerpt(text) || '(empty body)'}`, res.status);
    // 204 or an empty body: the agent had nothing to change.
    if (text.trim() === '') return ctx.values ?? {};
    try {
      return JSON.parse(text);
    } catch {
      throw new RemoteAgentError(`remote agent answered ${res.status} with a body that is not JSON: ${excerpt(text)}`, res.status);
    }
  };
}
