import type { Config, DatabaseRole, DatabaseSettings } from '../config/index.ts';
import { databaseSettings } from '../config/index.ts';
import { createPool, endPool, migrate, retryWhileUnavailable } from '../db/index.ts';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { queueSettings, startQueue } from '../queue/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { awaitSchema } from './schema-gate.ts';
import type { SchemaBehind } from './schema-gate.ts';

export interface Connections {
  pool: Pool;
  boss: PgBoss;
  /** The connect timeout and session limits of this process's connections (its role's). */
  database: DatabaseSettings;
  /** Stops pg-boss (waiting up to graceMs for jobs in progress), then closes the pool. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Opens what every process needs, in order: the pool, migrations (when MIGRATE_ON_START), the
 * schema version gate (waits while the database is older than the code), then pg-boss. While
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
    signal?: AbortSignal;
    /** Whether to migrate when MIGRATE_ON_START is unset (npm start's all-in-one does; Procfile processes do not). */
    migrateByDefault?: boolean;
    /** Told while the schema is older than the code needs (the process waits for the release meanwhile). */
    onSchemaBehind?: (behind: SchemaBehind) => void | Promise<void>;
  },
): Promise<Connections> {
  const migrateOnStart = config.MIGRATE_ON_START ?? opts.migrateByDefault ?? false;
  const database = databaseSettings(config, opts.role);
  const pool = createPool(databaseUrl, {
    max: config.DATABASE_POOL_MAX,
    applicationName: opts.applicationName,
    connectionTimeoutMillis: database.connectionTimeoutMillis,
    session: database.session,
    logger,
  });
  const wait = { logger, signal: opts.signal };
  let boss: PgBoss | undefined;
  try {
    await retryWhileUnavailable('connect', () => pool.query('SELECT 1'), wait);
    if (migrateOnStart) {
      const { applied } = await retryWhileUnavailable('migrations', () => migrate(pool, undefined, { logger }), wait);
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
          schema: config.PGBOSS_SCHEMA,
          settings: queueSettings(config),
          // Queue policy is written by whoever migrates (libs/queue startQueue).
          writePolicy: migrateOnStart,
          connection: database,
          // pg-boss's own pool: half of DATABASE_POOL_MAX (at least 2), so the setting bounds the process.
          max: Math.max(2, Math.ceil(config.DATABASE_POOL_MAX / 2)),
          supervise: opts.supervise,
          // The processes that supervise are those that work queues: only they wait for jobs.
          listen: opts.supervise,
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
