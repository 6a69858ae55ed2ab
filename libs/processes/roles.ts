import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentRegistry } from '../agents/index.ts';
import { ensureDefaultAssistants } from '../assistants/index.ts';
import type { Config } from '../config/index.ts';
import { CronScheduler } from '../crons/index.ts';
import { apiRoutes, authMiddleware, createApp, finishApp } from '../http/index.ts';
import type { ApiDeps } from '../http/index.ts';
import type { Logger } from '../log/index.ts';
import { RunWorker } from '../runs/index.ts';
import type { Connections } from './bootstrap.ts';
import { Heartbeat } from './heartbeat.ts';

// Each role of agentcron, started on open connections and answering a stop() that drains it.
// apps/* compose these: one role per process in production, all three under `npm start`.

export interface Role {
  stop(graceMs: number): Promise<void>;
}

export interface RoleDeps {
  config: Config;
  conn: Connections;
  logger: Logger;
  agents: AgentRegistry;
  databaseUrl: string;
}

export async function startApiRole(deps: RoleDeps): Promise<Role & { url: string }> {
  const { config, conn, logger, agents } = deps;
  await ensureDefaultAssistants(conn.pool, agents.graphIds());
  const apiDeps: ApiDeps = { pool: conn.pool, boss: conn.boss, config, logger, agents };
  const app = createApp({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    heartbeatSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    bodyLimitBytes: Math.max(1024 * 1024, config.CRON_MAX_PAYLOAD_BYTES * 4),
    auth: authMiddleware(apiDeps),
    routes: apiRoutes(apiDeps),
  });
  finishApp(app, logger);
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const heartbeat = new Heartbeat(conn.pool, 'api', config.HEARTBEAT_INTERVAL_SECONDS, logger);
  await heartbeat.start();
  const url = `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${port}`;
  logger.info(`api listening on ${url}`);
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
  const { config, conn, logger, databaseUrl } = deps;
  const heartbeat = new Heartbeat(conn.pool, 'scheduler', config.HEARTBEAT_INTERVAL_SECONDS, logger);
  await heartbeat.start();
  if (!config.CRON_ENABLED) {
    logger.info('CRON_ENABLED=false: the scheduler is idle and fires nothing');
    return { stop: () => heartbeat.stop() };
  }
  const scheduler = new CronScheduler({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    pollIntervalSeconds: config.CRON_POLL_INTERVAL_SECONDS,
    batchSize: config.CRON_BATCH_SIZE,
    limits: { missedMax: config.CRON_MISSED_MAX, graceMs: config.CRON_MISSED_GRACE_SECONDS * 1000, ledgerCap: 1000 },
    onTick: () => heartbeat.ticked(),
    listenUrl: databaseUrl,
  });
  await scheduler.start();
  logger.info('scheduler started', { poll_interval_s: config.CRON_POLL_INTERVAL_SECONDS, batch_size: config.CRON_BATCH_SIZE });
  return {
    async stop() {
      await scheduler.stop();
      await heartbeat.stop();
    },
  };
}

export async function startWorkerRole(deps: RoleDeps): Promise<Role> {
  const { config, conn, logger, agents } = deps;
  await ensureDefaultAssistants(conn.pool, agents.graphIds());
  const heartbeat = new Heartbeat(conn.pool, 'worker', config.HEARTBEAT_INTERVAL_SECONDS, logger);
  await heartbeat.start();
  const worker = new RunWorker({
    pool: conn.pool,
    boss: conn.boss,
    logger,
    agents,
    concurrency: config.WORKER_CONCURRENCY,
    runTimeoutSeconds: config.RUN_TIMEOUT_SECONDS,
  });
  await worker.start();
  logger.info('worker started', { concurrency: config.WORKER_CONCURRENCY, graphs: agents.graphIds() });
  return {
    async stop(graceMs) {
      // Runs in progress get the grace period; past it the connections' close aborts them and
      // their jobs are retried elsewhere.
      await Promise.race([worker.stop(), new Promise((r) => setTimeout(r, graceMs).unref())]);
      await heartbeat.stop();
    },
  };
}
