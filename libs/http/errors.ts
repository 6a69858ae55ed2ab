import type { ErrorRequestHandler, RequestHandler } from 'express';
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

/** Last handler: client errors become 4xx with a detail; anything else is logged and answered 500 without internals. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => {
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
    logger.error('unhandled error', { err: err instanceof Error ? err.stack : String(err) });
    res.status(500).json({ detail: 'internal server error' });
  };
}
