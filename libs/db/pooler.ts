import pg from 'pg';
import { connectionConfig } from './pool.ts';
import type { ConnectionOptions } from './pool.ts';

// Whether DATABASE_URL reaches PostgreSQL itself or a connection pooler in front of it
// (PgBouncer, pgcat, Supavisor ...). Behind a transaction pooler a session is not ours between
// transactions: the `options` startup parameter is refused, LISTEN loses its notifications and
// session state leaks to other clients. What tells, in this order:
// 1. the URL says so: `?pgbouncer=true` (the convention Prisma uses);
// 2. the server refuses the `options` startup parameter ("unsupported startup parameter", as
//    PgBouncer does unless told to ignore it);
// 3. the backend's pid (pg_backend_pid()) differs from the process id the server announced at
//    connect (BackendKeyData): a pooler answers the startup itself, with a cancel key of its own.

export interface PoolerCheck {
  pooled: boolean;
  /** Why it is taken for a pooler (null when it is not). */
  reason: string | null;
}

const refusesOptions = (err: unknown): boolean => /unsupported startup parameter/i.test(err instanceof Error ? err.message : String(err));

/** Connects once to `url` and tells whether a connection pooler answers there. Rejects as a connect would. */
export async function detectPooler(url: string, opts: ConnectionOptions = {}): Promise<PoolerCheck> {
  try {
    if (new URL(url).searchParams.get('pgbouncer') === 'true') return { pooled: true, reason: 'the URL says pgbouncer=true' };
  } catch {
    // not a URL: node-postgres will say what is wrong with it
  }
  let reason: string | null = null;
  let client = new pg.Client(connectionConfig(url, { ...opts, applicationName: opts.applicationName ?? 'agentcron-probe' }));
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    if (!refusesOptions(err)) throw err;
    reason = 'it refused the options startup parameter';
    client = new pg.Client(connectionConfig(url, { ...opts, pooled: true, applicationName: opts.applicationName ?? 'agentcron-probe' }));
    client.on('error', () => {});
    await client.connect();
  }
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const announced = (client as unknown as { processID: number | null }).processID;
    if (!reason && announced !== rows[0].pid) reason = `its backend pid (${rows[0].pid}) is not the one announced at connect (${announced})`;
  } finally {
    await client.end().catch(() => {});
  }
  return { pooled: reason !== null, reason };
}
