import type { z } from 'zod';
import { HttpError } from './errors.ts';

/** Where a request value comes from, for the error message. */
export type Source = 'body' | 'query' | 'path';

/**
 * Parses a request part with a zod schema (the single source of truth for request shapes).
 * A mismatch is a 422 whose detail names the field and the rule, e.g.
 * `body.schedule: Required` or `body.timezone: unknown IANA timezone "Mars/Base"`.
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, source: Source = 'body'): z.output<S> {
  const result = schema.safeParse(value ?? (source === 'body' ? {} : value));
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.length ? `${source}.${issue.path.join('.')}` : source;
  throw new HttpError(422, `${field}: ${issue.message}`);
}
