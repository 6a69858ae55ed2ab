import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentRegistry } from '../agents/index.ts';
import { ensureDefaultAssistants } from '../assistants/index.ts';
import type { Config } from '../config/index.ts';
import type { ApiDeps } from '../http/index.ts';
import { retryWhileUnavailable } from '../db/index.ts';
import { activity } from '../log/index.ts';
import type { Logger } from '../log/index.ts';
import { configuredJobs, registerMaintenanceJobs } from '../maintenance/index.ts';
import { metricsServed, serveMetrics } from '../metrics/index.ts';
import type { MetricsServer } from '../metrics/index.ts';
import type { Connections } from './bootstrap.ts';
import { Heartbeat, schedulersRunningSince } from '../liveness/index.ts';

// Each role of agentcron, started on open connections and answering a stop() that drains it.
// apps/* compose these: one role per process in production, all three under `npm start`.
// What only one role uses is imported when that role starts (the api's express app and routes,
// the scheduler's loop, the worker's run, webhook and maintenance workers): a process loads what
// its roles need, so a scheduler never loads the HTTP API (docs/performance.md, Memory).

export interface Role {
  stop(graceMs: number): Promise<void>;
}

export interface RoleDeps {
  config: Config;
  conn: Connections;
  logger: Logger;
  agents: AgentRegistry;
  databaseUrl: string;
  /** Aborted by SIGTERM: a startup step waiting for the database gives up at once. */
  signal?: AbortSignal;
  /** The api's port, already listening (it answered 503 while the process waited for the schema): the api takes it over. */
  server?: Server;
}

/**
 * A role's first queries wait for the database like the connection does (it may restart, or be
 * out of connections, between connecting and this step): retried with backoff, one line each.
 */
function whenReachable<T>({ logger, signal }: RoleDeps, what: string, fn: () => Promise<T>): Promise<T> {
  return retryWhileUnavailable(what, fn, { logger, signal });
}

/**
 * Every role registers the built-in maintenance jobs (idempotent, whatever starts first), so
 * their rows exist and follow MAINTENANCE_* as soon as any process of the deployment runs.
 */
async function registerMaintenance(deps: RoleDeps): Promise<void> {
  const { config, conn, logger } = deps;
  const { inserted, updated } = await whenReachable(deps, 'maintenance registration', () => registerMaintenanceJobs(conn.pool, configuredJobs(config)));
  if (inserted.length || updated.length) logger.info('maintenance jobs registered', { inserted, updated });
}

/**
 * METRICS_PORT: a scheduler or worker process without an api serves its own /metrics (what it
 * counts: runs, fire lag, ticks ...). Answers the server to close, or null when not needed.
 */
async function metricsPort({ config, logger }: RoleDeps): Promise<MetricsServer | null> {
  if (config.METRICS_PORT === 0 || metricsServed()) return null;
  return serveMetrics(config.METRICS_PORT, config.HOST, logger);
}

export async function startApiRole(deps: RoleDeps): Promise<Role & { url: string }> {
  const { config, conn, logger, agents } = deps;
  const [{ apiRoutes, authMiddleware, createApp, finishApp }, { allowPrivateWebhooks }, { uiRouter }] = await Promise.all([
    import('../http/index.ts'),
    import('../webhooks/index.ts'),
    import('../ui/index.ts'),
  ]);
  await whenReachable(deps, 'default assistants', () => ensureDefaultAssistants(conn.pool, agents.graphIds()));
  await registerMaintenance(deps);
  // The request schemas refuse webhooks on literal private addresses unless this allows them.
  allowPrivateWebhooks(config.WEBHOOK_ALLOW_PRIVATE);
  const apiDeps: ApiDeps = { pool: conn.pool, boss: conn.boss, config, logger, agents };
  const app = createApp({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    heartbeatSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    scheduler: { enabled: config.CRON_ENABLED, pollIntervalSeconds: config.CRON_POLL_INTERVAL_SECONDS },
    saturation: {
      pgbossSchema: config.PGBOSS_SCHEMA,
      maxStartLagSeconds: config.HEALTH_MAX_START_LAG_SECONDS,
      windowSeconds: config.HEALTH_START_LAG_WINDOW_SECONDS,
    },
    bodyLimitBytes: Math.max(1024 * 1024, config.CRON_MAX_PAYLOAD_BYTES * 4),
    auth: authMiddleware(apiDeps),
    routes: apiRoutes(apiDeps),
    dashboard: uiRouter(),
  });
  finishApp(app, logger);
  let server: Server;
  if (deps.server) {
    // The port that answered 503 while the schema was behind: requests go to the routes from now on.
    server = deps.server;
    server.removeAllListeners('request');
    server.on('request', app);
  } else {
    server = await new Promise((resolve, reject) => {
      const s = app.listen(config.PORT, config.HOST, () => resolve(s));
      s.once('error', reject);
    });
  }
  const port = (server.address() as AddressInfo).port;
  const heartbeat = new Heartbeat(conn.pool, 'api', config.HEARTBEAT_INTERVAL_SECONDS, logger);
  await whenReachable(deps, 'heartbeat', () => heartbeat.start());
  const url = `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${port}`;
  logger.info(`api listening on ${url} (dashboard ${url}/ui, API reference ${url}/docs)`);
  return {
    url,
    async stop(graceMs) {
      // Stop accepting connections; requests in flight finish; idle keep-alive sockets close now.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(force);
      await heartbeat.stop();
    },
  };
}

export async function startSchedulerRole(deps: RoleDeps): Promise<Role> {
  const { config, conn, logger } = deps;
  await registerMaintenance(deps);
  const metricsServer = await metricsPort(deps);
  const heartbeat = new Heartbeat(conn.pool, 'scheduler', config.HEARTBEAT_INTERVAL_SECONDS, logger);
  await whenReachable(deps, 'heartbeat', () => heartbeat.start());
  if (!config.CRON_ENABLED) {
    logger.info('CRON_ENABLED=false: the scheduler is idle and fires nothing (maintenance jobs included)');
    return {
      async stop() {
        await heartbeat.stop();
        await metricsServer?.close();
      },
    };
  }
  const [{ CronScheduler }, { MaintenanceScheduler }] = await Promise.all([import('../crons/index.ts'), import('../maintenance/index.ts')]);
  const scheduler = new CronScheduler({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    pollIntervalSeconds: config.CRON_POLL_INTERVAL_SECONDS,
    batchSize: config.CRON_BATCH_SIZE,
    limits: { missedMax: config.CRON_MISSED_MAX, graceMs: config.CRON_MISSED_GRACE_SECONDS * 1000, ledgerCap: 1000 },
    lookaheadMs: config.CRON_LOOKAHEAD_MS,
    onTick: () => heartbeat.ticked(),
    // DATABASE_DIRECT_URL when set; null behind a transaction pooler without it (the loop then polls).
    listenUrl: conn.listenUrl,
    queueSchema: config.PGBOSS_SCHEMA,
    // This process has been a scheduler since it started, waits for the database included: what
    // fell due since then is late, never missed (an occurrence is missed only when no scheduler ran).
    runningSince: new Date(performance.timeOrigin),
    // ... and so has the deployment since the earliest of the schedulers that ran without a break
    // until this one started (a rolling deploy: what the old one could not fire is late too).
    coveredBefore: (own) => schedulersRunningSince(conn.pool, own, 3 * config.HEARTBEAT_INTERVAL_SECONDS),
    // The built-in maintenance jobs fire in the same loop, the same way.
    sources: [new MaintenanceScheduler({ pool: conn.pool, boss: conn.boss, logger })],
  });
  await scheduler.start();
  logger.info('scheduler started', { poll_interval_s: config.CRON_POLL_INTERVAL_SECONDS, batch_size: config.CRON_BATCH_SIZE });
  return {
    async stop() {
      await scheduler.stop();
      await heartbeat.stop();
      await metricsServer?.close();
    },
  };
}

export async function startWorkerRole(deps: RoleDeps): Promise<Role> {
  const { config, conn, logger, agents } = deps;
  const [{ RunWorker }, { WebhookWorker }, { MaintenanceWorker, builtinJobs, maintenanceSettings }] = await Promise.all([
    import('../runs/index.ts'),
    import('../webhooks/index.ts'),
    import('../maintenance/index.ts'),
  ]);
  await whenReachable(deps, 'default assistants', () => ensureDefaultAssistants(conn.pool, agents.graphIds()));
  await registerMaintenance(deps);
  const metricsServer = await metricsPort(deps);
  const heartbeat = new Heartbeat(conn.pool, 'worker', config.HEARTBEAT_INTERVAL_SECONDS, logger);
  await whenReachable(deps, 'heartbeat', () => heartbeat.start());
  // pg-boss's notifications reach every queue's worker through the run worker's LISTEN connection.
  const listening = conn.listenUrl !== null;
  const webhooks = new WebhookWorker({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    secret: config.WEBHOOK_SECRET,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    connectTimeoutMs: config.WEBHOOK_CONNECT_TIMEOUT_SECONDS * 1000,
    responseTimeoutMs: config.WEBHOOK_TIMEOUT_SECONDS * 1000,
    retryDelaySeconds: config.WEBHOOK_RETRY_DELAY_SECONDS,
    deadLetterPollSeconds: config.QUEUE_SUPERVISE_INTERVAL_SECONDS,
    listening,
  });
  // Maintenance jobs on their own queue, one at a time: never in the way of runs.
  const maintenance = new MaintenanceWorker({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    settings: maintenanceSettings(config),
    jobs: builtinJobs(),
    listening,
  });
  const worker = new RunWorker({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    agents,
    concurrency: config.WORKER_CONCURRENCY,
    runTimeoutSeconds: config.RUN_TIMEOUT_SECONDS,
    runTimeoutMaxSeconds: config.RUN_TIMEOUT_MAX_SECONDS,
    heartbeatSeconds: config.WORKER_HEARTBEAT_SECONDS,
    queueSchema: config.PGBOSS_SCHEMA,
    // New runs, deferred runs and cancels reach the worker through LISTEN on this connection (a
    // poll every 30 s backs it up); without one (a transaction pooler and no DATABASE_DIRECT_URL)
    // it looks every second.
    ...(conn.listenUrl ? { listenUrl: conn.listenUrl } : { pollIntervalMs: 1000 }),
    onQueueNotification: (payload) => {
      webhooks.wake(payload);
      maintenance.wake(payload);
    },
    // Dead letters arrive at a supervise pass, which announces them; polled as a backstop.
    deadLetterPollSeconds: listening ? 60 : config.QUEUE_SUPERVISE_INTERVAL_SECONDS,
  });
  await worker.start();
  await webhooks.start();
  await maintenance.start();
  if (!config.WEBHOOK_SECRET) logger.warn('WEBHOOK_SECRET is not set: webhooks are sent unsigned (no X-Agentcron-Signature header)');
  if (config.WEBHOOK_ALLOW_PRIVATE) logger.warn('WEBHOOK_ALLOW_PRIVATE=true: webhooks may go to loopback, private, link-local and metadata addresses');
  logger.info('worker started', { concurrency: config.WORKER_CONCURRENCY, graphs: agents.graphIds() });
  // Each run's own lines are at debug: a line a minute counts them at info.
  activity.start(logger, config.LOG_SUMMARY_INTERVAL_SECONDS * 1000);
  return {
    async stop(graceMs) {
      // Runs in progress get the grace period; past it the worker aborts them and hands them back
      // to the queue (another worker takes them at once). Deliveries and maintenance jobs get the
      // same period; past it the connections' close aborts them and their jobs are retried.
      await Promise.all([
        worker.stop(graceMs),
        Promise.race([Promise.all([webhooks.stop(), maintenance.stop()]), new Promise((r) => setTimeout(r, graceMs).unref())]),
      ]);
      activity.stop(logger);
      await heartbeat.stop();
      await metricsServer?.close();
    },
  };
}
