import type { RequestHandler } from 'express';
import type { Queryable } from '../db/index.ts';
import { hashApiKey, userForKeyHash } from '../keys/index.ts';
import type { ApiDeps } from './deps.ts';
import { HttpError } from './errors.ts';

/** The user every request acts as when AUTH_MODE=none. */
export const IMPLICIT_USER = 'anonymous';

/** The caller's user id, set by the auth middleware: every resource is owned by and filtered on it. */
export function userOf(res: { locals: Record<string, unknown> }): string {
  return res.locals.userId as string;
}

/** The user an admin key (ADMIN_API_KEYS) acts as on the regular API. */
export const ADMIN_USER = 'admin';

/** AUTH_MODE=none: one implicit user, who may also call /admin (nothing is protected). */
export function noAuth(): RequestHandler {
  return (_req, res, next) => {
    res.locals.userId = IMPLICIT_USER;
    res.locals.admin = true;
    next();
  };
}

/** /admin/*: with AUTH_MODE=api_key only an admin key passes; a user's key is refused with 403. */
export function requireAdmin(): RequestHandler {
  return (_req, res, next) => {
    if (res.locals.admin !== true) throw new HttpError(403, 'this endpoint needs an admin key (one of ADMIN_API_KEYS); this key is a user key');
    next();
  };
}

/** The key a request carries: `x-api-key` (what the LangGraph SDK sends) or `Authorization: Bearer <key>`. */
export function presentedKey(headers: { 'x-api-key'?: string | string[]; authorization?: string }): string | null {
  const header = headers['x-api-key'];
  const apiKey = Array.isArray(header) ? header[0] : header;
  if (apiKey?.trim()) return apiKey.trim();
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return bearer ? bearer[1] : null;
}

const unauthorized = (detail: string) => new HttpError(401, detail);

/**
 * AUTH_MODE=api_key: every request needs a key, from AUTH_API_KEYS or the api_keys table; the
 * key's user owns what the request creates and sees nothing else. Missing or wrong key: 401.
 */
export function apiKeyAuth(db: Queryable, configured: { key: string; user: string }[], adminKeys: string[] = []): RequestHandler {
  const fromConfig = new Map(configured.map((k) => [hashApiKey(k.key), k.user]));
  const admins = new Set(adminKeys.map(hashApiKey));
  return async (req, res, next) => {
    const key = presentedKey(req.headers);
    if (!key) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw unauthorized('missing API key: send it in the x-api-key header or as Authorization: Bearer <key>');
    }
    const hash = hashApiKey(key);
    if (admins.has(hash)) {
      res.locals.userId = ADMIN_USER;
      res.locals.admin = true;
      return next();
    }
    const user = fromConfig.get(hash) ?? (await userForKeyHash(db, hash));
    if (!user) {
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw unauthorized('invalid API key');
    }
    res.locals.userId = user;
    next();
  };
}

/** The auth middleware for the configured AUTH_MODE. */
export function authMiddleware(deps: ApiDeps): RequestHandler {
  if (deps.config.AUTH_MODE === 'api_key') return apiKeyAuth(deps.pool, deps.config.AUTH_API_KEYS, deps.config.ADMIN_API_KEYS);
  return noAuth();
}
