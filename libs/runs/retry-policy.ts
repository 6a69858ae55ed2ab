import { z } from 'zod';

// A run's retry policy (docs/flow-control.md), named as Temporal's RetryPolicy. Pure: the API
// validates with retryPolicySchema (the one schema, also in OpenAPI), the worker and the graph
// config (agentcron.json) read a policy with parseRetryPolicy, which applies the same schema and
// fills the defaults. No I/O, no http.

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  max_attempts: number;
  initial_interval_seconds: number;
  backoff_coefficient: number;
  maximum_interval_seconds: number;
  /** Error names (a run error's `error` field) never retried. */
  non_retryable_errors: string[];
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  max_attempts: 3,
  initial_interval_seconds: 1,
  backoff_coefficient: 2,
  maximum_interval_seconds: 300,
  non_retryable_errors: [],
};

const RETRY_POLICY_KEYS = ['max_attempts', 'initial_interval_seconds', 'backoff_coefficient', 'maximum_interval_seconds', 'non_retryable_errors'] as const;

/** The longest interval a policy may name: a day. */
const MAX_INTERVAL_SECONDS = 86_400;
const MAX_ATTEMPTS = 100;

/** An assistant's (or a run config's) `max_concurrency`: its own limit `assistant:<id>`. */
export const MAX_CONCURRENCY = 10_000;

const positiveSeconds = z
  .number({ error: 'expected a number of seconds' })
  .gt(0, { message: 'must be greater than 0' })
  .max(MAX_INTERVAL_SECONDS, { message: `must be at most ${MAX_INTERVAL_SECONDS} (a day)` });

/**
 * The one schema of a retry policy: every field optional, unknown keys refused (a typo such as
 * `max_attempt` would otherwise silently leave the default), maximum >= initial when both are given.
 * A factory: the API's OpenAPI registry needs an instance made after it extended zod (this module
 * may be loaded before that), so libs/http makes its own from the same definition.
 */
export const makeRetryPolicySchema = () =>
  z
    .strictObject(
      {
        max_attempts: z
          .number({ error: 'expected an integer' })
          .int({ message: 'expected an integer' })
          .min(1, { message: 'must be at least 1 (1 = no retry)' })
          .max(MAX_ATTEMPTS, { message: `must be at most ${MAX_ATTEMPTS}` })
          .optional(),
        initial_interval_seconds: positiveSeconds.optional(),
        backoff_coefficient: z
          .number({ error: 'expected a number' })
          .min(1, { message: 'must be at least 1' })
          .max(10, { message: 'must be at most 10' })
          .optional(),
        maximum_interval_seconds: positiveSeconds.optional(),
        non_retryable_errors: z
          .array(z.string({ error: 'expected an error name' }).min(1, { message: 'must not be empty' }), { error: 'expected a list of error names' })
          .optional(),
      },
      {
        error: (iss) =>
          iss.code === 'unrecognized_keys'
            ? `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')} (known: ${RETRY_POLICY_KEYS.join(', ')})`
            : iss.input === undefined
              ? undefined
              : 'expected an object',
      },
    )
    .superRefine((p, ctx) => {
      if (p.initial_interval_seconds !== undefined && p.maximum_interval_seconds !== undefined && p.maximum_interval_seconds < p.initial_interval_seconds) {
        ctx.addIssue({
          code: 'custom',
          path: ['maximum_interval_seconds'],
          message: `must be at least initial_interval_seconds (${p.initial_interval_seconds})`,
        });
      }
    });

export const retryPolicySchema = makeRetryPolicySchema();

/** The first problem: the field's path inside the policy ('' for the policy itself) and why. */
function firstProblem(error: z.ZodError): { path: string; message: string } {
  const issue = error.issues[0];
  return { path: issue.path.join('.'), message: issue.message };
}

export type ParsedRetryPolicy = { ok: true; policy: RetryPolicy } | { ok: false; field: string; error: string };

/**
 * A stored or given policy with the defaults filled in, or the first problem: `field` is its path
 * inside the policy ('' for the policy itself), `error` the rule. A policy leaving out
 * maximum_interval_seconds gets max(300, initial), so it stays >= initial.
 */
export function parseRetryPolicy(value: unknown): ParsedRetryPolicy {
  const parsed = retryPolicySchema.safeParse(value);
  if (!parsed.success) {
    const p = firstProblem(parsed.error);
    return { ok: false, field: p.path, error: p.message };
  }
  const p = parsed.data;
  const initial = p.initial_interval_seconds ?? DEFAULT_RETRY_POLICY.initial_interval_seconds;
  return {
    ok: true,
    policy: {
      max_attempts: p.max_attempts ?? DEFAULT_RETRY_POLICY.max_attempts,
      initial_interval_seconds: initial,
      backoff_coefficient: p.backoff_coefficient ?? DEFAULT_RETRY_POLICY.backoff_coefficient,
      maximum_interval_seconds: p.maximum_interval_seconds ?? Math.max(DEFAULT_RETRY_POLICY.maximum_interval_seconds, initial),
      non_retryable_errors: p.non_retryable_errors ?? [],
    },
  };
}

/** A `max_concurrency` (an assistant's own limit): an integer 1-10000, or the problem. */
export function parseMaxConcurrency(value: unknown): { ok: true; max: number } | { ok: false; error: string } {
  if (typeof value !== 'number' || !Number.isInteger(value)) return { ok: false, error: `expected an integer, got ${JSON.stringify(value)}` };
  if (value < 1 || value > MAX_CONCURRENCY) return { ok: false, error: `must be between 1 and ${MAX_CONCURRENCY}, got ${value}` };
  return { ok: true, max: value };
}

/**
 * The flow-control keys of a config object (an assistant's config, a cron's run config): the
 * first problem as `config.retry_policy.max_attempts: ...` / `config.max_concurrency: ...`, or
 * null. Absent or null keys are fine (none set).
 */
export function flowConfigProblem(config: Record<string, unknown> | null | undefined): string | null {
  if (!config) return null;
  if (config.retry_policy != null) {
    const r = retryPolicySchema.safeParse(config.retry_policy);
    if (!r.success) {
      const p = firstProblem(r.error);
      return `config.retry_policy${p.path ? `.${p.path}` : ''}: ${p.message}`;
    }
  }
  if (config.max_concurrency != null) {
    const m = parseMaxConcurrency(config.max_concurrency);
    if (!m.ok) return `config.max_concurrency: ${m.error}`;
  }
  return null;
}
