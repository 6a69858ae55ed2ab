import type { RetryPolicy } from './retry-policy.ts';
import { DEFAULT_RETRY_POLICY, parseRetryPolicy } from './retry-policy.ts';

// Whether a failed attempt is retried, and when the next one may start (docs/flow-control.md).
// Retryable: a run timeout, and whatever error says `retryable: true`: a RetryableError thrown by
// a function agent, a remote agent's 408/425/429/5xx or no answer (libs/agents/remote.ts).
// Everything else is the agent's own verdict and ends the run.

/** What an attempt's failure says about retrying it. */
export interface FailureClass {
  retryable: boolean;
  /** The agent's or provider's own word on when to try again (Retry-After), in seconds. */
  retryAfterSeconds: number | null;
}

/** Classifies a thrown error: `retryable` and `retryAfterSeconds` fields (RetryableError, RemoteAgentError) or a run timeout. */
export function classifyFailure(err: unknown, timedOut: boolean): FailureClass {
  if (timedOut) return { retryable: true, retryAfterSeconds: null };
  if (typeof err !== 'object' || err === null) return { retryable: false, retryAfterSeconds: null };
  const e = err as { retryable?: unknown; retryAfterSeconds?: unknown };
  const after = typeof e.retryAfterSeconds === 'number' && Number.isFinite(e.retryAfterSeconds) && e.retryAfterSeconds >= 0 ? e.retryAfterSeconds : null;
  return { retryable: e.retryable === true, retryAfterSeconds: after };
}

/**
 * The policy of a run: the most specific one set wins as a whole (the cron's `retry_policy`, then
 * `config.retry_policy` of the run's config, which is the cron's config over the assistant's, then
 * the graph's in agentcron.json), the default otherwise. A stored policy that no longer parses (it
 * was validated when written) falls through to the next.
 */
export function resolveRetryPolicy(candidates: unknown[]): RetryPolicy {
  for (const c of candidates) {
    if (c === undefined || c === null) continue;
    const parsed = parseRetryPolicy(c);
    if (parsed.ok) return parsed.policy;
  }
  return DEFAULT_RETRY_POLICY;
}

/**
 * Seconds until attempt `attempt + 1` may start, after attempt `attempt` (1-based) failed: the
 * provider's Retry-After when it gave one, else exponential backoff with full jitter
 * (a random delay in [0, initial x coefficient^(attempt-1)]); never more than maximum_interval_seconds.
 */
export function retryDelaySeconds(policy: RetryPolicy, attempt: number, retryAfterSeconds: number | null, random: () => number = Math.random): number {
  if (retryAfterSeconds !== null) return Math.min(retryAfterSeconds, policy.maximum_interval_seconds);
  const ceiling = Math.min(policy.maximum_interval_seconds, policy.initial_interval_seconds * policy.backoff_coefficient ** (attempt - 1));
  return ceiling * random();
}

/** One earlier attempt of a run, as attempt_log keeps it. */
export interface AttemptRecord {
  attempt: number;
  started_at: string | null;
  ended_at: string;
  status: 'error' | 'timeout';
  error: { error: string; message: string } | null;
  /** When the next attempt could start. */
  retry_at: string;
}
