import type { Config, ConnectionBudget, DatabaseRole, DatabaseSettings } from '../config/index.ts';
import { databaseSettings } from '../config/index.ts';
import { createPool, detectPooler, endPool, migrate, retryWhileUnavailable } from '../db/index.ts';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { queueSettings, startQueue } from '../queue/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { awaitSchema } from './schema-gate.ts';
import type { SchemaBehind } from './schema-gate.ts';

export interface Connections {
  /** The process's one pool (DATABASE_URL): its queries, pg-boss's and the checkpointer's. */
  pool: Pool;
  boss: PgBoss;
  /** The connect timeout and session limits of this process's connections (its role's). */
  database: DatabaseSettings;
  /** Where LISTEN connections go (DATABASE_DIRECT_URL, else DATABASE_URL), or null: no LISTEN, poll. */
  listenUrl: string | null;
  /** DATABASE_URL goes through a connection pooler. */
  pooled: boolean;
  budget: ConnectionBudget;
  /** Stops pg-boss (waiting up to graceMs for jobs in progress), then closes the pool. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Opens what every process needs, in order: a look at what DATABASE_URL is (a pooler?), the
 * pool, migrations (when MIGRATE_ON_START; on DATABASE_DIRECT_URL when set), the schema version
 * gate (waits while the database is older than the code), then pg-boss on the same pool. While
 * the database is unreachable (refused, starting up, out of connections ...) each step is retried
 * with capped backoff, for ever, one log line per attempt; aborting `signal` (SIGTERM) ends the
 * wait at once, rejecting with the signal's reason. Any other error is thrown. `close` releases
 * them in reverse order.
 */
export async function connect(
  config: Config,
  databaseUrl: string,
  logger: Logger,
  opts: {
    supervise: boolean;
    applicationName: string;
    role: DatabaseRole;
    budget: ConnectionBudget;
    /** The pool opens all its connections at once and never closes idle ones (the scheduler's). */
    keepConnections?: boolean;
    signal?: AbortSignal;
    /** Whether to migrate when MIGRATE_ON_START is unset (npm start's all-in-one does; Procfile processes do not). */
    migrateByDefault?: boolean;
    /** Told while the schema is older than the code needs (the process waits for the release meanwhile). */
    onSchemaBehind?: (behind: SchemaBehind) => void | Promise<void>;
  },
): Promise<Connections> {
  const migrateOnStart = config.MIGRATE_ON_START ?? opts.migrateByDefault ?? false;
  const database = databaseSettings(config, opts.role);
  const wait = { logger, signal: opts.signal };
  const directUrl = config.DATABASE_DIRECT_URL;
  const probe = await retryWhileUnavailable(
    'connect',
    () =>
      detectPooler(databaseUrl, {
        connectionTimeoutMillis: database.connectionTimeoutMillis,
        session: database.session,
        applicationName: opts.applicationName,
      }),
    wait,
  );
  const pooled = probe.pooled;
  // LISTEN needs a session of its own: the direct URL, else DATABASE_URL unless it is a pooler.
  const listenUrl = directUrl ?? (pooled ? null : databaseUrl);
  if (pooled && !directUrl && opts.budget.listeners > 0) {
    logger.warn(
      `DATABASE_URL goes through a connection pooler (${probe.reason}): no LISTEN, this process polls every second instead; set DATABASE_DIRECT_URL ` +
        `to a direct connection for instant wake-ups and migrations`,
    );
  } else if (pooled) logger.info(`DATABASE_URL goes through a connection pooler (${probe.reason}): session limits are the database role's defaults`);
  const { total, pool: poolSize, source } = opts.budget;
  const listeners = listenUrl ? opts.budget.listeners : 0;
  logger.info(
    `connections: at most ${poolSize + listeners} (${listeners} LISTEN + a pool of ${poolSize}; ` +
      `${source === 'default' ? `default ${total}` : `${source}=${source === 'DATABASE_POOL_MAX' ? poolSize : total}`})`,
  );
  const pool = createPool(databaseUrl, {
    max: opts.budget.pool,
    applicationName: opts.applicationName,
    connectionTimeoutMillis: database.connectionTimeoutMillis,
    session: database.session,
    pooled,
    keepConnections: opts.keepConnections,
    logger,
  });
  let boss: PgBoss | undefined;
  try {
    await retryWhileUnavailable('connect', () => pool.query('SELECT 1'), wait);
    // A pool that keeps its connections takes them all now: its slots are its own from the start.
    if (opts.keepConnections) await retryWhileUnavailable('connect', () => openAll(pool, opts.budget.pool), wait);
    if (migrateOnStart && pooled && !directUrl) {
      // The migration lock and settings are a session's: through a transaction pooler they would
      // land on backends other clients then get (a lock held for ever, timeouts of 0).
      logger.warn('MIGRATE_ON_START: migrations skipped, DATABASE_URL goes through a connection pooler; run the release step with DATABASE_DIRECT_URL set');
    } else if (migrateOnStart) {
      // On DATABASE_DIRECT_URL when set: the runner opens its own connection there and closes it.
      const { applied } = await retryWhileUnavailable('migrations', () => migrate(directUrl ?? pool, undefined, { logger }), wait);
      if (applied.length) logger.info('migrations applied', { applied });
    }
    // New code on an older schema waits here for the release; pg-boss's own schema too, unless
    // this process installs it itself (startQueue below, when it migrates).
    await awaitSchema(pool, {
      logger,
      signal: opts.signal,
      pollSeconds: config.SCHEMA_WAIT_POLL_SECONDS,
      queueSchema: migrateOnStart ? null : config.PGBOSS_SCHEMA,
      onBehind: opts.onSchemaBehind,
    });
    boss = await retryWhileUnavailable(
      'queue',
      () =>
        startQueue({
          connectionString: databaseUrl,
          // pg-boss runs its statements on the process's pool: no pool of its own outside the budget.
          pool,
          schema: config.PGBOSS_SCHEMA,
          settings: queueSettings(config),
          // Queue policy is written by whoever migrates (libs/queue startQueue).
          writePolicy: migrateOnStart,
          connection: database,
          supervise: opts.supervise,
          // agentcron's own LISTEN connections wake its loops; pg-boss's work() loops poll.
          listen: false,
          superviseIntervalSeconds: config.QUEUE_SUPERVISE_INTERVAL_SECONDS,
          migrate: migrateOnStart,
          logger,
        }),
      wait,
    );
    // A SIGTERM that arrived while pg-boss was starting: stop here rather than run roles.
    opts.signal?.throwIfAborted();
    const started = boss;
    return {
      pool,
      boss: started,
      database,
      listenUrl,
      pooled,
      budget: opts.budget,
      async close(graceMs = 0) {
        await started.stop({ graceful: graceMs > 0, timeout: Math.max(1000, graceMs), close: true }).catch(() => {});
        // Until the sessions are gone: an embedded database is stopped right after.
        await endPool(pool).catch(() => {});
      },
    };
  } catch (err) {
    const closing = (async () => {
      await boss?.stop({ graceful: false, close: true }).catch(() => {});
      await pool.end().catch(() => {});
    })();
    // Shutting down: an attempt still in flight may hold the pool until its connect timeout; the
    // process exits without waiting for it.
    if (!opts.signal?.aborted) await closing;
    throw err;
  }
}

/** Opens `n` connections of the pool at once and gives them back (idle, kept). */
async function openAll(pool: Pool, n: number): Promise<void> {
  const taken = await Promise.allSettled(Array.from({ length: n }, () => pool.connect()));
  for (const t of taken) if (t.status === 'fulfilled') t.value.release();
  const failed = taken.find((t) => t.status === 'rejected');
  if (failed) throw failed.reason;
}
