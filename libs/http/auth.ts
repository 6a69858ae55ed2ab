import type { RequestHandler } from 'express';
import type { ApiDeps } from './deps.ts';

/** The user every request acts as when AUTH_MODE=none. */
export const IMPLICIT_USER = 'anonymous';

/** The caller's user id, set by the auth middleware: every resource is owned by and filtered on it. */
export function userOf(res: { locals: Record<string, unknown> }): string {
  return res.locals.userId as string;
}

/** AUTH_MODE=none: one implicit user. */
export function noAuth(): RequestHandler {
  return (_req, res, next) => {
    res.locals.userId = IMPLICIT_USER;
    next();
  };
}

/** The auth middleware for the configured AUTH_MODE. */
export function authMiddleware(_deps: ApiDeps): RequestHandler {
  return noAuth();
}
