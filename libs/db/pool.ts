import pg from 'pg';
import { markDirect } from './prepared.ts';
import { describeDatabaseError } from './unavailable.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that can run a query: the pool itself or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

// timestamptz arrives as Date (pg's default); bigint counts arrive as strings unless cast.

/** Where lost connections are reported (a winston Logger fits). */
export interface WarnLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

/**
 * Server-side limits of every session of a pool (0 = none), so no session of a process that
 * hangs, crashes mid-transaction or is cut off holds locks for long.
 */
export interface SessionSettings {
  /** statement_timeout: the longest one statement may run (lock waits included). */
  statementTimeoutMs: number;
  /** lock_timeout: the longest one statement may wait for a lock. */
  lockTimeoutMs: number;
  /** idle_in_transaction_session_timeout: a session idle inside a transaction this long is ended, its locks released. */
  idleInTransactionTimeoutMs: number;
}

/**
 * TCP keepalive on the server's side of every connection: a client that stops answering (host
 * gone, network partition) has its backend dropped, and its locks released, after
 * idle + interval × count = 30 s of silence; tcp_user_timeout does the same when the server's
 * own writes go unacknowledged.
 */
export const SERVER_KEEPALIVE = { idleSeconds: 10, intervalSeconds: 5, count: 4, userTimeoutMs: 30_000 } as const;

/** TCP keepalive on our side: probes start after this much silence on a connection. */
export const CLIENT_KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/** The `options` startup parameter (`-c name=value ...`) carrying the session settings and server keepalives. */
export function sessionOptions(session?: Partial<SessionSettings>): string {
  const settings: [string, number | undefined][] = [
    ['statement_timeout', session?.statementTimeoutMs],
    ['lock_timeout', session?.lockTimeoutMs],
    ['idle_in_transaction_session_timeout', session?.idleInTransactionTimeoutMs],
    ['tcp_keepalives_idle', SERVER_KEEPALIVE.idleSeconds],
    ['tcp_keepalives_interval', SERVER_KEEPALIVE.intervalSeconds],
    ['tcp_keepalives_count', SERVER_KEEPALIVE.count],
    ['tcp_user_timeout', SERVER_KEEPALIVE.userTimeoutMs],
  ];
  return settings
    .filter((s): s is [string, number] => s[1] !== undefined)
    .map(([name, value]) => `-c ${name}=${Math.max(0, Math.round(value))}`)
    .join(' ');
}

export interface ConnectionOptions {
  applicationName?: string;
  /**
   * Through a transaction pooler (PgBouncer's pool_mode=transaction): no `options` startup
   * parameter (PgBouncer refuses it) and so no session limits from us; the database role's
   * defaults apply (README "Behind a connection pooler").
   */
  pooled?: boolean;
  /** How long opening a connection (or, for a pool, waiting for a free one) may take. */
  connectionTimeoutMillis?: number;
  /** Server-side limits of each session; absent ones are left at the server's defaults. */
  session?: Partial<SessionSettings>;
}

/**
 * The node-postgres config of one agentcron connection: TCP keepalive on both sides, the
 * session settings in the `options` startup parameter (applied by the server before the first
 * query, visible with SHOW, restored by RESET). `options` given in the URL are kept and come
 * last, so they win. Also for pg.Client and pg-boss (whose constructor accepts `options`).
 */
export function connectionConfig(connectionString: string, opts: ConnectionOptions = {}): pg.ClientConfig {
  // node-postgres lets the URL's parameters override the config's: ours are merged into the URL's `options`.
  let url = connectionString;
  let fromUrl: string | null = null;
  try {
    const u = new URL(connectionString);
    fromUrl = u.searchParams.get('options');
    // `pgbouncer=true` (the convention Prisma uses) only tells agentcron what the URL is.
    if (fromUrl !== null || u.searchParams.has('pgbouncer')) {
      u.searchParams.delete('options');
      u.searchParams.delete('pgbouncer');
      url = u.toString();
    }
  } catch {
    // not a URL node-postgres would parse differently: leave it as it is
  }
  const config: pg.ClientConfig = {
    connectionString: url,
    application_name: opts.applicationName ?? 'agentcron',
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: CLIENT_KEEPALIVE_INITIAL_DELAY_MS,
  };
  if (opts.pooled) return config;
  return { ...config, options: [sessionOptions(opts.session), fromUrl].filter(Boolean).join(' ') };
}

const GUARDED = Symbol('agentcron.guarded');

/**
 * Gives a client a permanent 'error' listener (logging the first error at warn, never
 * throwing). A client checked out of a pg Pool has none of the pool's while it is held, and a
 * FATAL from the server (restart, failover, pg_terminate_backend) would otherwise be an
 * unhandled 'error' event that ends the process. Idempotent.
 */
export function guardClient(client: pg.ClientBase, logger?: WarnLogger, what = 'database connection'): void {
  const c = client as pg.ClientBase & { [GUARDED]?: boolean };
  if (c[GUARDED]) return;
  c[GUARDED] = true;
  let reported = false;
  client.on('error', (err) => {
    if (reported) return;
    reported = true;
    logger?.warn(`${what} lost (${describeDatabaseError(err)})`);
  });
}

export interface PoolOptions extends ConnectionOptions {
  max?: number;
  /**
   * Keep every connection once opened (no idle timeout): a process that must not lose its slot
   * to others between bursts (the scheduler between passes) holds it.
   */
  keepConnections?: boolean;
  /** Told (at warn) when a connection of the pool is lost. */
  logger?: WarnLogger;
}

/**
 * A pool whose every connection survives the database going away: each client, from the moment
 * the pool creates it, has an 'error' listener of its own (see guardClient), so a connection lost
 * while checked out (a transaction, a migration, an advisory-lock holder) fails only what ran on
 * it; the pool discards broken clients and opens new ones when the database is back.
 */
export function createPool(connectionString: string, opts: PoolOptions = {}): Pool {
  const max = opts.max ?? 10;
  const pool = new pg.Pool({ ...connectionConfig(connectionString, opts), max, ...(opts.keepConnections ? { min: max, idleTimeoutMillis: 0 } : {}) });
  const open = new Set<pg.ClientBase>();
  OPEN_CLIENTS.set(pool, open);
  // An idle client's error is also reported here: guardClient has logged it already.
  pool.on('error', () => {});
  // Not through a transaction pooler: hot statements may be prepared once per connection (prepared.ts).
  if (!opts.pooled) markDirect(pool);
  pool.on('connect', (client) => {
    if (!opts.pooled) markDirect(client);
    open.add(client);
    client.once('end', () => open.delete(client));
    guardClient(client, opts.logger, `database connection (${opts.applicationName ?? 'agentcron'})`);
  });
  return pool;
}

/** The connections of each pool createPool made whose sockets have not closed yet. */
const OPEN_CLIENTS = new WeakMap<Pool, Set<pg.ClientBase>>();

/**
 * Ends a pool and waits, at most `timeoutMs`, until its connections have really closed. pg's
 * end() resolves once each client has been told to end, before the server has seen it go: a
 * database stopped right afterwards (npm start's embedded one, stopped last) would terminate
 * those sessions mid-goodbye, and each would report itself lost (57P01).
 */
export async function endPool(pool: Pool, timeoutMs = 2000): Promise<void> {
  await pool.end();
  const open = [...(OPEN_CLIENTS.get(pool) ?? [])];
  if (!open.length) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(open.map((client) => new Promise((resolve) => client.once('end', resolve)))),
    new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}

/** How long a ROLLBACK may take before the connection is given up instead (the server then rolls back). */
const ROLLBACK_TIMEOUT_MS = 5_000;

/**
 * Run fn inside BEGIN/COMMIT on one client; ROLLBACK and rethrow on any error. A client whose
 * connection broke (or whose ROLLBACK failed or hung) is released with the error, so the pool
 * discards it instead of handing a dead or mid-transaction session to the next caller.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken ??= err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (!broken) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('ROLLBACK did not complete in time')), ROLLBACK_TIMEOUT_MS);
      });
      await Promise.race([client.query('ROLLBACK'), deadline])
        .catch((e: unknown) => {
          broken ??= e instanceof Error ? e : new Error(String(e));
        })
        .finally(() => clearTimeout(timer));
    }
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** PostgreSQL error codes agentcron reacts to, by name. */
export const PgErrorCode = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  invalidTextRepresentation: '22P02',
  undefinedTable: '42P01',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  adminShutdown: '57P01',
  cannotConnectNow: '57P03',
  tooManyConnections: '53300',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
} as const;

export function pgErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}
