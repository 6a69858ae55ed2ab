import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Queryable } from '../db/index.ts';

// The api_keys table of AUTH_MODE=api_key (managed by `npm run keys`, read by the API's auth
// middleware): only a hash of each key is stored.

/** Keys are looked up by hash, so the table never holds a usable key and a lookup takes the same time whatever the key. */
export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

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
