import type { Config } from '../config/index.ts';
import { createPool, migrate } from '../db/index.ts';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { startQueue } from '../queue/index.ts';
import type { PgBoss } from '../queue/index.ts';

export interface Connections {
  pool: Pool;
  boss: PgBoss;
  /** Stops pg-boss (waiting up to graceMs for jobs in progress), then closes the pool. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Opens what every process needs, in order: the pool, migrations (when MIGRATE_ON_START), then
 * pg-boss. `close` releases them in reverse order.
 */
export async function connect(
  config: Config,
  databaseUrl: string,
  logger: Logger,
  opts: { supervise: boolean; applicationName: string },
): Promise<Connections> {
  const pool = createPool(databaseUrl, { max: config.DATABASE_POOL_MAX, applicationName: opts.applicationName });
  try {
    if (config.MIGRATE_ON_START) {
      const { applied } = await migrate(pool);
      if (applied.length) logger.info('migrations applied', { applied });
    }
    const boss = await startQueue({
      connectionString: databaseUrl,
      schema: config.PGBOSS_SCHEMA,
      runTimeoutSeconds: config.RUN_TIMEOUT_SECONDS,
      runMaxAttempts: config.RUN_MAX_ATTEMPTS,
      runHeartbeatSeconds: config.WORKER_HEARTBEAT_SECONDS,
      runTimeoutMaxSeconds: config.RUN_TIMEOUT_MAX_SECONDS,
      webhookMaxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
      webhookRetryDelaySeconds: config.WEBHOOK_RETRY_DELAY_SECONDS,
      webhookConnectTimeoutSeconds: config.WEBHOOK_CONNECT_TIMEOUT_SECONDS,
      webhookTimeoutSeconds: config.WEBHOOK_TIMEOUT_SECONDS,
      supervise: opts.supervise,
      superviseIntervalSeconds: config.QUEUE_SUPERVISE_INTERVAL_SECONDS,
      migrate: config.MIGRATE_ON_START,
      logger,
    });
    return {
      pool,
      boss,
      async close(graceMs = 0) {
        await boss.stop({ graceful: graceMs > 0, timeout: Math.max(1000, graceMs), close: true }).catch(() => {});
        await pool.end().catch(() => {});
      },
    };
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
}
