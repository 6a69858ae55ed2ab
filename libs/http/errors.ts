import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { Refusal } from '../refusal/index.ts';
import type { Missing, RefusalKind } from '../refusal/index.ts';
import { databaseTrouble, describeDatabaseError, isSchemaMismatch, pgErrorCode } from '../db/index.ts';
import type { Logger } from '../log/index.ts';

/** An error the client caused or should see: answered as `{"detail": message}` with its status. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(detail);
    this.name = 'HttpError';
    this.status = status;
  }
}

export const notFound = (what = 'Not found') => new HttpError(404, what);

/**
 * The API's 404 details, one spelling each (capitalised, as LangGraph's and Aegra's APIs say
 * them): someone else's cron, thread, run or assistant reads exactly as a missing one.
 */
export const CRON_NOT_FOUND = 'Cron not found';
export const THREAD_NOT_FOUND = 'Thread not found';
export const RUN_NOT_FOUND = 'Run not found';
export const ASSISTANT_NOT_FOUND = 'Assistant not found';

/** A domain rule's refusal (libs/refusal), answered with its status and detail. */
const REFUSAL_STATUS: Record<RefusalKind, number> = { invalid: 422, missing: 404, forbidden: 403, conflict: 409, over_limit: 429 };
const MISSING_DETAIL: Record<Missing, string> = {
  cron: CRON_NOT_FOUND,
  thread: THREAD_NOT_FOUND,
  run: RUN_NOT_FOUND,
  assistant: ASSISTANT_NOT_FOUND,
  occurrence: 'Occurrence not found',
};

export function refusalAnswer(err: Refusal): HttpError {
  const detail = err.kind === 'missing' && !err.message && err.missing ? MISSING_DETAIL[err.missing] : err.message;
  return new HttpError(REFUSAL_STATUS[err.kind], detail);
}

/** Where a caller lost on the API is sent. */
export const DOCS_HINT = 'the API reference is at /docs (OpenAPI document: /openapi.json)';

/** 405 with the Allow header: the path exists, not for this method. */
export function methodNotAllowed(res: Response, method: string, path: string, allowed: string[]): HttpError {
  res.setHeader('Allow', allowed.join(', '));
  return new HttpError(405, `${method} is not allowed on ${path}; allowed: ${allowed.join(', ')} (${DOCS_HINT})`);
}

/** A router layer, as Express 5's router keeps them (only what this file reads). */
interface Layer {
  match(path: string): unknown;
  route?: { methods: Record<string, boolean>; _methods(): string[] };
  handle?: { stack?: Layer[] };
}

/** The methods the app's routes answer on a path (walking routers mounted at "/"). */
function methodsFor(stack: Layer[] | undefined, path: string, found: Set<string>): void {
  for (const layer of stack ?? []) {
    let matched: unknown;
    try {
      matched = layer.match(path);
    } catch {
      continue; // a malformed %-escape in a parameter
    }
    if (!matched) continue;
    if (layer.route) {
      if (layer.route.methods._all) continue;
      for (const m of layer.route._methods()) found.add(m);
    } else if (layer.handle?.stack) {
      methodsFor(layer.handle.stack, path, found);
    }
  }
}

/**
 * Mounted after every route: a path some route answers for other methods is a 405 with Allow
 * (GET on a POST-only route); any other is a 404 pointing to /docs.
 */
export const unknownRoute: RequestHandler = (req, res, next) => {
  const allowed = new Set<string>();
  methodsFor((req.app as unknown as { router?: { stack?: Layer[] } }).router?.stack, req.path, allowed);
  allowed.delete(req.method);
  if (allowed.size > 0 && req.method !== 'OPTIONS') return next(methodNotAllowed(res, req.method, req.path, [...allowed].sort()));
  next(new HttpError(404, `no route for ${req.method} ${req.path}; ${DOCS_HINT}`));
};

/** Seconds a client is asked to wait (Retry-After) when the database is unreachable, or busy. */
export const RETRY_AFTER_SECONDS = { unavailable: 5, busy: 2 } as const;

/** What a client is told of a database problem: the kind of trouble, never hosts or internals. */
function databaseReason(err: unknown): string {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const code = pgErrorCode(e);
    const raw = (e as { message?: unknown }).message;
    const message = typeof raw === 'string' ? raw : raw === undefined || raw === null ? '' : (JSON.stringify(raw) ?? '');
    if (/timeout exceeded when trying to connect/i.test(message)) return 'no database connection free in time';
    if (code === '53300' || /too many clients|connection slots are reserved/i.test(message)) return 'too many connections';
    if (code === '57P03') return 'the database system is starting up or shutting down';
    if (code === '57P01' || code === '57P02') return 'the connection was terminated by the server';
    if (code === '55P03') return 'timed out waiting for a lock';
    if (code === '57014') return 'the statement timed out';
    if (code === '25P03') return 'the transaction was idle too long';
    if (code === 'ECONNREFUSED') return 'connection refused';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the database host does not resolve';
    if (/connection timeout/i.test(message) || code === 'ETIMEDOUT') return 'connection timed out';
    if (/connection terminated|not queryable/i.test(message) || code === 'ECONNRESET' || code === 'EPIPE') return 'the connection was lost';
  }
  return 'the database cannot be reached';
}

/** Why a JSON body was refused: not JSON at all, or JSON that is not an object or a list (`null`, `"text"`, `5`). */
function parseFailure(err: { body?: unknown; message?: unknown }): string {
  if (typeof err.body === 'string') {
    try {
      const value: unknown = JSON.parse(err.body);
      return `body: expected a JSON object, got ${value === null ? 'null' : typeof value}`;
    } catch {
      // not JSON: said below
    }
  }
  return `malformed JSON body: ${String(err.message)}`;
}

/**
 * Last handler: client errors become 4xx with a detail; the database being unreachable (refused,
 * restarting, out of connections, no pooled connection in time) or too busy (lock or statement
 * timeout) becomes 503 with Retry-After, and so does a schema older or newer than the code (an
 * unknown column or table); anything else is logged and answered 500 without internals.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof Refusal) err = refusalAnswer(err);
    if (err instanceof HttpError) {
      res.status(err.status).json({ detail: err.message });
      return;
    }
    // body-parser errors carry a status and a type.
    const status = typeof err?.status === 'number' ? err.status : typeof err?.statusCode === 'number' ? err.statusCode : 500;
    if (err?.type === 'entity.parse.failed') {
      res.status(422).json({ detail: parseFailure(err) });
      return;
    }
    if (err?.type === 'entity.too.large') {
      res.status(413).json({ detail: `request body exceeds the limit of ${err.limit} bytes` });
      return;
    }
    if (status >= 400 && status < 500) {
      res.status(status).json({ detail: String(err?.message ?? 'bad request') });
      return;
    }
    const trouble = databaseTrouble(err);
    if (trouble) {
      logger.warn(`database ${trouble} during ${req.method} ${req.path}: ${describeDatabaseError(err)}`);
      res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS[trouble]));
      res.status(503).json({ detail: `database ${trouble}: ${databaseReason(err)}; retry later` });
      return;
    }
    if (isSchemaMismatch(err)) {
      // Code and schema of different releases (a release under way, or one that has not run):
      // the client may retry; the operator is told what is missing.
      logger.error(
        `schema mismatch during ${req.method} ${req.path}: ${describeDatabaseError(err)}: the database schema does not match this version of agentcron`,
      );
      res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS.unavailable));
      res.status(503).json({ detail: 'the database schema does not match this version of agentcron (a release is under way or has not run); retry later' });
      return;
    }
    logger.error('unhandled error', { err: err instanceof Error ? err.stack : String(err) });
    res.status(500).json({ detail: 'internal server error' });
  };
}
