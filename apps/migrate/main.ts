// Applies migrations/ and installs or upgrades pg-boss's schema (Procfile `release`).
// Safe to run from several processes at once.
import { loadConfigOrExit, requireDatabaseUrl } from '../../libs/config/index.ts';
import { createPool, detectPooler, migrate } from '../../libs/db/index.ts';
import { createLogger } from '../../libs/log/index.ts';
import { installQueueSchema, queueSettings } from '../../libs/queue/index.ts';

const config = loadConfigOrExit();
// Migrations need a session of their own (a lock held across statements): DATABASE_DIRECT_URL
// when DATABASE_URL is a transaction pooler.
const databaseUrl = config.DATABASE_DIRECT_URL ?? requireDatabaseUrl(config);
const logger = createLogger({ level: config.LOG_LEVEL, json: config.NODE_ENV === 'production', service: 'migrate' });
// One connection, for the migrations and then pg-boss's: a release that runs beside a deployment
// already at its budget (README "Deploying") needs one slot more, not seven.
const pool = createPool(databaseUrl, { max: 1, applicationName: 'agentcron-migrate' });
try {
  if (!config.DATABASE_DIRECT_URL) {
    const { pooled, reason } = await detectPooler(databaseUrl, { applicationName: 'agentcron-migrate' });
    if (pooled)
      throw new Error(
        `DATABASE_URL goes through a connection pooler (${reason}); migrations need a session of their own: set DATABASE_DIRECT_URL to a direct connection`,
      );
  }
  // Each migration's lock waits and retries are logged: a release waiting for a gap says so.
  const { applied } = await migrate(pool, undefined, { logger });
  await installQueueSchema({
    connectionString: databaseUrl,
    pool,
    listen: false,
    schema: config.PGBOSS_SCHEMA,
    settings: queueSettings(config),
    logger,
  });
  logger.info(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
} catch (err) {
  logger.error(`migration failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
