// A run's retry policy (named as Temporal's RetryPolicy): how many attempts and how far apart.
// Pure: the API validates with it, the worker resolves and applies it.

export interface RetryPolicy {
  /** 1 = no retry; 1-100. */
  max_attempts: number;
  initial_interval_seconds: number;
  backoff_coefficient: number;
  maximum_interval_seconds: number;
  /** Error names (a run error's `error`) never retried. */
  non_retryable_errors: string[];
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  max_attempts: 3,
  initial_interval_seconds: 1,
  backoff_coefficient: 2,
  maximum_interval_seconds: 300,
  non_retryable_errors: [],
};

const KEYS = ['max_attempts', 'initial_interval_seconds', 'backoff_coefficient', 'maximum_interval_seconds', 'non_retryable_errors'] as const;
const MAX_INTERVAL_SECONDS = 86_400;

export type ParsedRetryPolicy = { ok: true; policy: RetryPolicy } | { ok: false; field: string; error: string };

/** Checks a retry policy as written (fields left out take the defaults); the error names the field at fault. */
export function parseRetryPolicy(x: unknown): ParsedRetryPolicy {
  const fail = (field: string, error: string): ParsedRetryPolicy => ({ ok: false, field, error });
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return fail('', 'must be an object');
  const o = x as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!(KEYS as readonly string[]).includes(key)) return fail(key, `unknown field (allowed: ${KEYS.join(', ')})`);
  const p: RetryPolicy = { ...DEFAULT_RETRY_POLICY, non_retryable_errors: [] };
  const num = (key: (typeof KEYS)[number], min: number, max: number, integer: boolean, exclusiveMin = false): string | null => {
    const v = o[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) return integer ? 'must be an integer' : 'must be a number';
    if (exclusiveMin ? v <= min : v < min) return `must be ${exclusiveMin ? 'greater than' : 'at least'} ${min}`;
    if (v > max) return `must be at most ${max}`;
    (p as unknown as Record<string, number>)[key] = v;
    return null;
  };
  const problems: [string, string | null][] = [
    ['max_attempts', num('max_attempts', 1, 100, true)],
    ['initial_interval_seconds', num('initial_interval_seconds', 0, MAX_INTERVAL_SECONDS, false, true)],
    ['backoff_coefficient', num('backoff_coefficient', 1, 10, false)],
    ['maximum_interval_seconds', num('maximum_interval_seconds', 0, MAX_INTERVAL_SECONDS, false, true)],
  ];
  for (const [field, error] of problems) if (error) return fail(field, error);
  if (p.maximum_interval_seconds < p.initial_interval_seconds) return fail('maximum_interval_seconds', 'must be at least initial_interval_seconds');
  const names = o.non_retryable_errors;
  if (names !== undefined && names !== null) {
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n.trim() === '')) return fail('non_retryable_errors', 'must be a list of error names');
    p.non_retryable_errors = [...(names as string[])];
  }
  return { ok: true, policy: p };
}
