import type { Values } from './spec.ts';
import { RETRY_OPTIONS, UsageError } from './spec.ts';

// The CLI's argument readers: options as the API's fields, a wrong one a UsageError naming it.

export function jsonObject(name: string, text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${name} must be JSON (${(err as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`--${name} must be a JSON object, e.g. '{"topic": "news"}'`);
  return v as Record<string, unknown>;
}

/** A JSON object, or `key=value` pairs separated by commas (values read as JSON when they are). */
export function metadataFilter(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  if (text.trim().startsWith('{')) return jsonObject('metadata', text);
  const out: Record<string, unknown> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`--metadata: "${part}" is neither JSON nor key=value`);
    const raw = part.slice(i + 1).trim();
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[part.slice(0, i).trim()] = value;
  }
  return out;
}

export function bool(name: string, text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  const t = text.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(t)) return true;
  if (['false', 'no', '0', 'off'].includes(t)) return false;
  throw new UsageError(`--${name} must be true or false (got "${text}")`);
}

export function int(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number of at least ${min} (got "${text}")`);
  return n;
}

/** A number (the server checks its range and names the field). */
export function num(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got "${text}")`);
  return n;
}

/**
 * The retry_policy the options give: --retry-policy JSON (the whole policy; "none" clears it on
 * update), and each --retry-* option over it, or over `current` (the cron's stored policy, on
 * update: a PATCH replaces the policy whole, so the options change only the fields they name).
 * undefined when no option is given.
 */
export function retryPolicy(v: Values, update: boolean, current?: Record<string, unknown> | null): Record<string, unknown> | null | undefined {
  const fields = Object.entries(RETRY_OPTIONS).filter(([opt]) => v[opt as keyof Values] !== undefined);
  if (v['retry-policy'] === undefined && fields.length === 0) return undefined;
  let policy: Record<string, unknown> | null = current ?? null;
  if (v['retry-policy'] !== undefined) {
    if (update && clearable(v['retry-policy']) === null) {
      if (fields.length) throw new UsageError('--retry-policy none clears the policy: give no --retry-* option with it');
      return null;
    }
    policy = jsonObject('retry-policy', v['retry-policy'])!;
  }
  const out: Record<string, unknown> = { ...(policy ?? {}) };
  for (const [opt, field] of fields) {
    const text = v[opt as keyof Values] as string;
    out[field] = field === 'max_attempts' ? int(opt, text, 1) : num(opt, text);
  }
  return out;
}

/** `none` (or an empty string) clears a field on update: sent as null. */
export const clearable = (text: string | undefined): string | null | undefined =>
  text === undefined ? undefined : text === '' || text === 'none' ? null : text;

/** The create/update fields the options give. */
export function cronBody(v: Values, update: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (v.schedule !== undefined) body.schedule = v.schedule;
  if (v.timezone !== undefined) body.timezone = update ? clearable(v.timezone) : v.timezone;
  const input = jsonObject('input', v.input);
  if (input !== undefined) body.input = input;
  const metadata = jsonObject('metadata', v.metadata);
  if (metadata !== undefined) body.metadata = metadata;
  if (v['end-time'] !== undefined) body.end_time = update ? clearable(v['end-time']) : v['end-time'];
  if (v.webhook !== undefined) body.webhook = update ? clearable(v.webhook) : v.webhook;
  if (v['on-run-completed'] !== undefined) body.on_run_completed = v['on-run-completed'];
  if (v['missed-policy'] !== undefined) body.missed_policy = v['missed-policy'];
  if (v['overlap-policy'] !== undefined) body.overlap_policy = v['overlap-policy'];
  const enabled = bool('enabled', v.enabled);
  if (enabled !== undefined) body.enabled = enabled;
  const jitter = int('jitter', v.jitter, 0);
  if (jitter !== undefined) body.jitter_seconds = jitter;
  if (!update) {
    const policy = retryPolicy(v, false);
    if (policy !== undefined) body.retry_policy = policy;
  }
  return body;
}
