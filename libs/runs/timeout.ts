// A run's timeout: RUN_TIMEOUT_SECONDS, or its assistant's config.timeout_seconds within
// RUN_TIMEOUT_MAX_SECONDS. One rule, used by the worker and by the API that validates assistants.

export interface RunTimeoutSettings {
  /** RUN_TIMEOUT_SECONDS: a run's timeout unless its assistant sets one. */
  seconds: number;
  /** RUN_TIMEOUT_MAX_SECONDS: the most an assistant may set (never below `seconds`). */
  maxSeconds: number;
}

/**
 * The rule for an assistant's `config.timeout_seconds`: a positive finite number, or a numeric
 * string (fractions allowed), read as seconds; null for anything else. The worker falls back to
 * RUN_TIMEOUT_SECONDS on null; the API refuses such a value (422) when an assistant is written.
 */
export function parseTimeoutSeconds(raw: unknown): number | null {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** The longest timeout an assistant may set: RUN_TIMEOUT_MAX_SECONDS, never below RUN_TIMEOUT_SECONDS. */
export const maxTimeoutSeconds = (s: RunTimeoutSettings): number => Math.max(s.seconds, s.maxSeconds);

/**
 * A run's timeout in seconds: its assistant's `config.timeout_seconds` (see parseTimeoutSeconds)
 * capped at the maximum, else RUN_TIMEOUT_SECONDS. Only the assistant decides it: a run's own
 * config cannot lengthen its leash.
 */
export function runTimeoutSeconds(assistantConfig: Record<string, unknown> | null | undefined, s: RunTimeoutSettings): number {
  const n = parseTimeoutSeconds(assistantConfig?.timeout_seconds);
  return n === null ? s.seconds : Math.min(n, maxTimeoutSeconds(s));
}

/**
 * What is wrong with an assistant's `config.timeout_seconds`, when given (null: nothing): it must
 * be one the worker will honour, by parseTimeoutSeconds and at most RUN_TIMEOUT_MAX_SECONDS;
 * otherwise the worker would quietly fall back to RUN_TIMEOUT_SECONDS or cap it.
 */
export function timeoutSecondsProblem(config: Record<string, unknown> | null | undefined, s: RunTimeoutSettings): string | null {
  if (!config || !('timeout_seconds' in config)) return null;
  const raw = config.timeout_seconds;
  const max = maxTimeoutSeconds(s);
  const n = parseTimeoutSeconds(raw);
  if (n !== null && n <= max) return null;
  return (
    'config.timeout_seconds: must be a positive number of seconds, or a numeric string, ' +
    `at most RUN_TIMEOUT_MAX_SECONDS (${max}); got ${JSON.stringify(raw)}`
  );
}
