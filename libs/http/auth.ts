import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Queryable } from '../db/index.ts';
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

/** Keys are looked up by hash, so the table never holds a usable key and a lookup takes the same time whatever the key. */
export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

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

// ---- the api_keys table (managed by `npm run keys`) ----

/** The user of an unrevoked stored key, or null. Marks the key used (at most once a minute). */
export async function userForKeyHash(db: Queryable, hash: string): Promise<string | null> {
  const { rows } = await db.query<{ user_id: string; stale: boolean }>(
    `SELECT user_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
       FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
    [hash],
  );
  if (!rows[0]) return null;
  if (rows[0].stale) {
    // Bookkeeping only: a failure here must not fail the request.
    db.query(`UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1`, [hash]).catch(() => {});
  }
  return rows[0].user_id;
}

export interface StoredApiKey {
  key_id: string;
  key_prefix: string;
  user_id: string;
  name: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** Creates a key for a user: answers the key itself (shown once) and its stored record. */
export async function createApiKey(db: Queryable, userId: string, name: string | null): Promise<{ key: string; record: StoredApiKey }> {
  const key = `ac_${randomBytes(32).toString('base64url')}`;
  const { rows } = await db.query<StoredApiKey>(
    `INSERT INTO api_keys (key_id, key_hash, key_prefix, user_id, name) VALUES ($1, $2, $3, $4, $5)
     RETURNING key_id, key_prefix, user_id, name, created_at, last_used_at, revoked_at`,
    [randomUUID(), hashApiKey(key), key.slice(0, 10), userId, name],
  );
  return { key, record: rows[0] };
}

export async function listApiKeys(db: Queryable, userId: string | null): Promise<StoredApiKey[]> {
  const { rows } = await db.query<StoredApiKey>(
    `SELECT key_id, key_prefix, user_id, name, created_at, last_used_at, revoked_at
       FROM api_keys WHERE $1::text IS NULL OR user_id = $1 ORDER BY created_at`,
    [userId],
  );
  return rows;
}

/** Revokes a key by its id; false when there is no such unrevoked key. */
export async function revokeApiKey(db: Queryable, keyId: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL`, [keyId]);
  return (rowCount ?? 0) > 0;
}
