// The crons API tests' helpers (api-crons.test.ts, api-crons-reads.test.ts): a plain HTTP call
// answering status, body and headers, and threads and crons written straight to the database.
import { randomUUID } from 'node:crypto';
import { defaultAssistantId } from '../../libs/assistants/index.ts';
import type { Stack } from './stack.ts';

export const USER = 'anonymous'; // AUTH_MODE=none
export const ECHO = defaultAssistantId('echo');

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export async function call(base: string, method: string, path: string, body?: unknown, raw?: string): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {},
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export async function newThread(stack: Stack, userId = USER): Promise<string> {
  const id = randomUUID();
  await stack.db.pool.query(`INSERT INTO threads (thread_id, user_id) VALUES ($1, $2)`, [id, userId]);
  return id;
}

/** A cron owned by someone else, written straight to the database. */
export async function foreignCron(stack: Stack, userId: string, metadata: Record<string, unknown> = {}): Promise<string> {
  const id = randomUUID();
  await stack.db.pool.query(
    `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, enabled, metadata, payload) VALUES ($1, $2, $3, '0 9 * * *', false, $4, '{"input": {}}')`,
    [id, ECHO, userId, JSON.stringify(metadata)],
  );
  return id;
}
