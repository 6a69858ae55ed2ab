import type { ErrorRequestHandler, RequestHandler } from 'express';
import { databaseTrouble, describeDatabaseError, pgErrorCode } from '../db/index.ts';
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

export const unknownRoute: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, `no route for ${req.method} ${req.path}`));
};

/** Seconds a client is asked to wait (Retry-After) when the database is unreachable, or busy. */
export const RETRY_AFTER_SECONDS = { unavailable: 5, busy: 2 } as const;

/** What a client is told of a database problem: the kind of trouble, never hosts or internals. */
function databaseReason(err: unknown): string {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const code = pgErrorCode(e);
    const message = String((e as { message?: unknown }).message ?? '');
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

/**
 * Last handler: client errors become 4xx with a detail; the database being unreachable (refused,
 * restarting, out of connections, no pooled connection in time) or too busy (lock or statement
 * timeout) becomes 503 with Retry-After; anything else is logged and answered 500 without internals.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof HttpError) {
      res.status(err.status).json({ detail: err.message });
      return;
    }
    // body-parser errors carry a status and a type.
    const status = typeof err?.status === 'number' ? err.status : typeof err?.statusCode === 'number' ? err.statusCode : 500;
    if (err?.type === 'entity.parse.failed') {
      res.status(422).json({ detail: `malformed JSON body: ${err.message}` });
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
    logger.error('unhandled error', { err: err instanceof Error ? err.stack : String(err) });
    res.status(500).json({ detail: 'internal server error' });
  };
}
