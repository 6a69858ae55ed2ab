import { z } from 'zod';
import { isUuid } from '../../ids/index.ts';
import { WEBHOOK_URL_MAX_LENGTH, webhookCreateProblem, webhookUrlProblem } from '../../webhooks/index.ts';
import { MAX_CONCURRENCY, flowConfigProblem, makeRetryPolicySchema } from '../../runs/index.ts';
import { HttpError } from '../errors.ts';
import { registry } from '../openapi.ts';

// Shapes shared by the threads, runs and assistants routes (and free for the crons routes):
// errors, paging, sorting, metadata, `select`, and the security schemes every route sits behind.

export const ErrorSchema = registry.register(
  'Error',
  z.object({ detail: z.string().describe('Why the request failed, naming the field when one is at fault.') }),
);

export const Metadata = z.record(z.string(), z.unknown()).describe('Free-form JSON object.');

/**
 * A webhook destination, for crons and runs alike: an http(s) URL of at most 2,048 characters
 * with a host written out, and (the part of the SSRF guard that needs no DNS) not a literal
 * loopback/private/link-local/metadata address unless WEBHOOK_ALLOW_PRIVATE. Hostnames are
 * checked again when sending, after DNS. Credentials in it (https://user:secret@host/x) are kept
 * for the delivery and never shown: answers carry the URL without them.
 */
export const webhookUrl = z
  .string()
  .superRefine((s, ctx) => {
    const problem = webhookUrlProblem(s) ?? webhookCreateProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .openapi({ format: 'uri', maxLength: WEBHOOK_URL_MAX_LENGTH });

/** What a webhook receives (the description of every `webhook` field). */
export const WEBHOOK_DESCRIPTION =
  'POSTed the Run as JSON when a run ends (any status), retried with backoff. With WEBHOOK_SECRET set, signed: ' +
  'X-Agentcron-Signature: sha256=<hex HMAC-SHA256 of "<X-Agentcron-Timestamp>.<body>">. Loopback, private, link-local ' +
  'and metadata destinations are refused (a literal address with 422 here, a hostname when sending) unless WEBHOOK_ALLOW_PRIVATE=true. ' +
  'At most 2,048 characters. Credentials in the URL (https://user:secret@host/x) are sent as Basic authorization and never shown: answers ' +
  'carry the URL without them.';

/**
 * A retry policy (docs/flow-control.md): the schema of libs/runs/retry-policy.ts (the worker reads
 * stored policies with the same rules), made here after openapi.ts extended zod, registered for OpenAPI. Unknown keys are a 422 naming them.
 */
export const RetryPolicySchema = registry.register(
  'RetryPolicy',
  makeRetryPolicySchema().openapi({
    description:
      "How a run that fails with a retryable error is attempted again (names as Temporal's RetryPolicy). Every field optional: " +
      'max_attempts (default 3, 1-100, 1 = no retry), initial_interval_seconds (default 1, > 0, at most 86400), backoff_coefficient (default 2, 1-10), ' +
      'maximum_interval_seconds (default 300, at least initial_interval_seconds, at most 86400), non_retryable_errors (error names never retried, default []).',
  }),
);

/** Where a config object may carry flow control: `config.retry_policy`, `config.max_concurrency`. */
export const FLOW_CONFIG_NOTE =
  `config.retry_policy: a RetryPolicy (the same rules as retry_policy); config.max_concurrency: an integer 1-${MAX_CONCURRENCY}, ` +
  "the assistant's own concurrency limit (assistant:<assistant_id>). Anything else in them is a 422 naming the field.";

/**
 * A config's flow-control keys (an assistant's config, a cron's run config): a 422 naming the
 * field (body.config.retry_policy.max_attempts ...). The LangGraph SDK sends a cron's retry policy
 * in config.retry_policy (it drops the top-level retry_policy).
 */
export function checkFlowConfig(config: Record<string, unknown> | null | undefined): void {
  const problem = flowConfigProblem(config);
  if (problem) throw new HttpError(422, `body.${problem}`);
}

/** Attempts and waiting, on a Run and on a ledger row (docs/flow-control.md). */
export const ATTEMPT_FIELDS = {
  attempts: z.number().int().describe('agentcron: attempts of the agent so far (the earlier ones, plus the current one once it has started).'),
  attempt_log: z
    .array(z.record(z.string(), z.unknown()))
    .describe('agentcron: the earlier attempts, oldest first ([] when none): attempt, started_at, ended_at, status, error, retry_at.'),
  waiting: z
    .string()
    .nullable()
    .describe(
      'agentcron, pending only: why it is not executing: "retry" (backoff until not_before), "limit:<name>" (a concurrency or rate limit has no room), ' +
        '"thread" (an older run of its thread goes first); ' +
        'null: due and waiting for a free worker, or not yet due.',
    ),
  not_before: z.string().nullable().describe('agentcron, pending only: a waiting retry starts no sooner than this.'),
};

/** A page size in a JSON body (the SDK sends numbers). */
export const bodyLimit = (fallback = 10) => z.number().int().min(1).max(1000).default(fallback);
export const bodyOffset = z.number().int().min(0).default(0);

/** The same in a query string, where every value arrives as text. */
export const queryLimit = (fallback = 10) => z.coerce.number().int().min(1).max(1000).default(fallback);
export const queryOffset = z.coerce.number().int().min(0).default(0);

export const SortOrder = z.enum(['asc', 'desc']);

/**
 * A list of field names to return. In a body it is a JSON array; in a query string the 1.15.x
 * SDK repeats the parameter (`select=a&select=b`) while 2.0.0 sends one JSON text (`select=["a","b"]`).
 */
export function selectFields<const F extends readonly [string, ...string[]]>(fields: F) {
  return z.preprocess(
    (v) => {
      if (typeof v !== 'string') return v;
      if (v.trim().startsWith('[')) {
        try {
          return JSON.parse(v) as unknown;
        } catch {
          return v;
        }
      }
      return v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    },
    z.array(z.enum(fields)).min(1),
  );
}

/** Keeps only the selected fields of each answer (all of them when nothing was selected). */
export function project<T extends object>(item: T, select: readonly string[] | null | undefined): Partial<T> {
  if (!select?.length) return item;
  return Object.fromEntries(Object.entries(item).filter(([k]) => select.includes(k))) as Partial<T>;
}

/**
 * A resource id from a path. Ids are UUIDs; anything else cannot name a resource, so it answers
 * 404 like any missing one (`missing`: its constant in ../errors.ts), and never reaches
 * PostgreSQL as a malformed uuid.
 */
export function pathId(value: string | undefined, missing: string): string {
  if (!value || !isUuid(value)) throw new HttpError(404, missing);
  return value.toLowerCase();
}

// ---- OpenAPI helpers ----

registry.registerComponent('securitySchemes', 'ApiKey', {
  type: 'apiKey',
  in: 'header',
  name: 'x-api-key',
  description: 'AUTH_MODE=api_key: a key from AUTH_API_KEYS or `npm run keys -- create`. Not needed with AUTH_MODE=none.',
});
registry.registerComponent('securitySchemes', 'Bearer', { type: 'http', scheme: 'bearer', description: 'The same key as `Authorization: Bearer <key>`.' });

/** Every API route accepts either header. */
export const SECURITY: Record<string, string[]>[] = [{ ApiKey: [] }, { Bearer: [] }];

export const json = (schema: z.ZodType, description = 'OK') => ({ description, content: { 'application/json': { schema } } });

const ERROR_TEXT: Record<number, string> = {
  401: 'Missing or invalid API key (AUTH_MODE=api_key).',
  403: 'The resource is read-only.',
  404: 'No such resource, or it belongs to another user.',
  408: 'The run had not ended within the wait limit; join again.',
  405: 'The path exists for other methods (listed in the Allow header).',
  409: 'Conflicts with the current state.',
  415: 'The body is not JSON: send JSON with content-type: application/json.',
  422: 'Invalid input; `detail` names the field.',
};

/** Error answers of a route, all `{"detail": ...}`; 401 is always possible. */
export function errors(...codes: number[]) {
  return Object.fromEntries([401, ...codes].map((c) => [String(c), json(ErrorSchema, ERROR_TEXT[c] ?? 'Error')]));
}

export const NoContent = { description: 'Done; no body.' };

type RouteDoc = {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  description?: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<string, unknown>;
};

/** Registers a route of a tag in the OpenAPI document, behind the API's security schemes. */
export function documentRoutes(tag: string, routes: RouteDoc[]): void {
  for (const r of routes) {
    registry.registerPath({
      method: r.method,
      path: r.path,
      tags: [tag],
      summary: r.summary,
      description: r.description,
      security: SECURITY,
      request: {
        params: r.params,
        query: r.query,
        body: r.body ? { content: { 'application/json': { schema: r.body } } } : undefined,
      },
      responses: r.responses as never,
    });
  }
}
