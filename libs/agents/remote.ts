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
  /** Its Retry-After, in seconds (capped), when it sent one. */
  readonly retryAfterSeconds: number | null;
  /** No answer (unreachable, timed out) or a transient status: worth another attempt (libs/runs/retry.ts). */
  readonly retryable: boolean;
  constructor(
    message: string,
    status: number | null = null,
    retryAfterSeconds: number | null = null,
    retryable = status === null || RETRYABLE_STATUSES.has(status),
  ) {
    super(message);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
    this.retryable = retryable;
  }
}

/** HTTP statuses of a remote agent that are worth another attempt (its run's retry policy decides). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Longest a Retry-After is believed: anything longer (or unparsable) is capped, never trusted blindly. */
export const RETRY_AFTER_MAX_SECONDS = 86_400;

/**
 * An HTTP Retry-After value (RFC 9110 10.2.3): delay-seconds or an HTTP-date. Null when absent or
 * garbage; capped at RETRY_AFTER_MAX_SECONDS; a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), RETRY_AFTER_MAX_SECONDS);
  // An HTTP-date names its weekday and GMT; Date.parse is lenient, so insist on that shape.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v)) return null;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.min(Math.max(0, (at - now) / 1000), RETRY_AFTER_MAX_SECONDS);
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
      throw new RemoteAgentError(
        `remote agent unreachable: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`,
      );
    }
    if (!res.ok) {
      throw new RemoteAgentError(
        `remote agent answered ${res.status}: ${excerpt(text) || '(empty body)'}`,
        res.status,
        parseRetryAfter(res.headers.get('retry-after')),
      );
    }
    // 204 or an empty body: the agent had nothing to change.
    if (text.trim() === '') return ctx.values ?? {};
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // A 2xx that is not JSON is the agent's answer, not a transient failure.
      throw new RemoteAgentError(`remote agent answered ${res.status} with a body that is not JSON: ${excerpt(text)}`, res.status, null, false);
    }
  };
}
