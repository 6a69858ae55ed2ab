import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import { AgentConfigError, builtinAgents, loadAgents, openCheckpointer } from '../agents/index.ts';
import type { LoadedAgents } from '../agents/index.ts';
import { ConfigError, connectionBudget, loadConfigOrExit, requireDatabaseUrl } from '../config/index.ts';
import type { Config, ConnectionBudget, DatabaseRole } from '../config/index.ts';
import { retryWhileUnavailable, startEmbeddedServer } from '../db/index.ts';
import type { EmbeddedDatabase } from '../db/index.ts';
import { createLogger } from '../log/index.ts';
import { setLedgerExcerptBytes } from '../runs/index.ts';
import { parseRetryPolicy } from '../runs/index.ts';
import type { Logger } from '../log/index.ts';
import { connect } from './bootstrap.ts';
import type { Connections } from './bootstrap.ts';
import { fatal, onShutdown } from './lifecycle.ts';
import { startApiRole, startSchedulerRole, startWorkerRole } from './roles.ts';
import type { Role, RoleDeps } from './roles.ts';

// node:http through getBuiltinModule, not an ESM import: the import's namespace reads each of the
// module's exports, WebSocket included, which loads undici (~50 ms of CPU at every start; docs/performance.md, Start).
const { createServer } = process.getBuiltinModule('node:http');

export interface ProcessSpec {
  /** Name on every log line. */
  service: string;
  /** Started in this order; stopped in the same order (the ones taking new work stop first). */
  roles: ((deps: RoleDeps) => Promise<Role>)[];
  /** Run pg-boss maintenance here (workers). */
  supervise: boolean;
  /** Without DATABASE_URL, start the embedded PostgreSQL instead of refusing to start. */
  embeddedFallback?: boolean;
  /** Migrate at startup when MIGRATE_ON_START is unset (npm start's all-in-one; a Procfile deploy migrates in its release). */
  migrateByDefault?: boolean;
  /**
   * Whose connection settings (connect timeout, session limits) the process uses. Unset: `api`
   * for an api-only process, `scheduler` for a scheduler-only one, else `worker`.
   */
  databaseRole?: DatabaseRole;
}

function databaseRoleOf(spec: ProcessSpec): DatabaseRole {
  if (spec.databaseRole) return spec.databaseRole;
  if (spec.roles.length > 0 && spec.roles.every((r) => r === startApiRole)) return 'api';
  if (spec.roles.length > 0 && spec.roles.every((r) => r === startSchedulerRole)) return 'scheduler';
  return 'worker';
}

/**
 * The graphs of the config file, for processes that run agents or serve their state (api,
 * worker); the scheduler never touches agent code. A bad graph prints one line naming it and
 * exits 1, before anything else starts.
 */
async function loadAgentsOrExit(spec: ProcessSpec, config: Config, logger: Logger): Promise<LoadedAgents | null> {
  if (!spec.roles.some((role) => role === startApiRole || role === startWorkerRole)) return null;
  try {
    const loaded = await loadAgents({ configPath: config.AGENTCRON_CONFIG });
    for (const [graphId, flow] of loaded.registry.flow.graphs) {
      const parsed = flow.retry_policy === null ? null : parseRetryPolicy(flow.retry_policy);
      if (parsed && !parsed.ok) {
        const field = parsed.field ? `retry_policy.${parsed.field}` : 'retry_policy';
        throw new AgentConfigError(`${path.basename(loaded.configFile ?? 'agentcron.json')}: graph "${graphId}": ${field} ${parsed.error}`, graphId);
      }
    }
    const graphs = Object.entries(loaded.kinds).map(([id, kind]) => `${id} (${kind})`);
    logger.info(`graphs: ${graphs.join(', ')}`, { config_file: loaded.configFile });
    return loaded;
  } catch (err) {
    const message = err instanceof AgentConfigError ? err.message : `could not load the graphs: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`agentcron: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(1);
  }
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The process's connection budget; a number that cannot hold what it runs prints one line and exits 1. */
function budgetOrExit(config: Config, spec: ProcessSpec): ConnectionBudget {
  try {
    return connectionBudget(config, {
      api: spec.roles.includes(startApiRole),
      scheduler: spec.roles.includes(startSchedulerRole),
      worker: spec.roles.includes(startWorkerRole),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`agentcron: ${err.message}\n`);
    process.exit(1);
  }
}

/** A process's whole life: config, logger, database, queue, roles, and a drain on SIGTERM/SIGINT. */
export async function runProcess(spec: ProcessSpec): Promise<void> {
  const config = loadConfigOrExit();
  const budget = budgetOrExit(config, spec);
  // Every role may end cron runs (worker results, API cancels, the reaper): one budget per process.
  setLedgerExcerptBytes(config.LEDGER_OUTPUT_EXCERPT_BYTES);
  const logger = createLogger({ level: config.LOG_LEVEL, json: config.NODE_ENV === 'production', service: spec.service });
  // A standalone process without a database says so first, before any agent code is loaded.
  let databaseUrl = config.DATABASE_URL ?? (spec.embeddedFallback ? undefined : requireDatabaseUrl(config));
  const loaded = await loadAgentsOrExit(spec, config, logger);
  let embedded: EmbeddedDatabase | undefined;
  if (!databaseUrl) {
    logger.info(`DATABASE_URL not set: starting embedded PostgreSQL (data in ${config.EMBEDDED_PG_DIR})`);
    // In a process group of its own: a Ctrl-C reaches this process, which drains, then stops the database last.
    embedded = await startEmbeddedServer({ dataDir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT }).catch((err) =>
      fatal(logger, 'embedded PostgreSQL', err),
    );
    databaseUrl = embedded.url;
    logger.info(`embedded PostgreSQL at ${embedded.url} (npm run keys and other commands run next to it use it when DATABASE_URL is not set)`);
  }
  const agents = loaded?.registry ?? builtinAgents();
  const url = databaseUrl;
  let conn: Connections | undefined;
  // While the schema is older than the code: the api's port answers 503 saying why (the api role takes this server over).
  let waiting: { server: Server; detail: string } | undefined;
  const servesApi = spec.roles.includes(startApiRole);
  let checkpointer: PostgresSaver | undefined;
  const roles: Role[] = [];
  const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
  // A SIGTERM while the database is awaited ends the wait at once (then exit 0).
  const stopping = new AbortController();
  // The drain is in place before anything waits on the database or any role starts: a role logs
  // that it has started before it returns, and whoever reads that line may signal at once (a
  // platform, a test). A SIGTERM with no handler yet takes the default action and kills the
  // process undrained, by the signal. A signal during startup lets it finish (or abandons a wait
  // for the database), then stops what it started.
  let startup: Promise<void> = Promise.resolve();
  onShutdown(logger, config.SHUTDOWN_GRACE_SECONDS, async () => {
    stopping.abort(new Error('shutting down'));
    // One deadline for the whole drain, so the process exits within the grace period it promised.
    const deadline = Date.now() + graceMs;
    const left = () => Math.max(0, deadline - Date.now());
    await startup;
    if (waiting && !roles.length) await closeServer(waiting.server);
    for (const r of roles) await r.stop(left());
    await checkpointer?.end().catch(() => {});
    await conn?.close(Math.max(1000, left()));
    await embedded?.stop();
  });
  const role = databaseRoleOf(spec);
  startup = (async () => {
    try {
      conn = await connect(config, url, logger, {
        supervise: spec.supervise,
        applicationName: `agentcron-${spec.service}`,
        role,
        budget,
        // A scheduler keeps its connections between passes: a slot given back could be gone when the next pass is due.
        keepConnections: spec.roles.includes(startSchedulerRole) && config.CRON_ENABLED,
        signal: stopping.signal,
        migrateByDefault: spec.migrateByDefault,
        onSchemaBehind: async ({ detail }) => {
          if (!servesApi) return;
          if (waiting) {
            waiting.detail = detail;
            return;
          }
          // The HTTP API's module only in a process that serves it.
          const { waitingForSchema } = await import('../http/waiting.ts');
          const w = { server: createServer(), detail };
          waiting = w;
          w.server.on(
            'request',
            waitingForSchema(() => w.detail, config.SCHEMA_WAIT_POLL_SECONDS),
          );
          await new Promise<void>((resolve) => {
            w.server.once('error', (err) => {
              logger.warn(`could not listen on port ${config.PORT} while waiting for the schema: ${err.message}`);
              resolve();
            });
            w.server.listen(config.PORT, config.HOST, () => resolve());
          });
          if (w.server.listening)
            logger.info(`api waiting for the schema on port ${(w.server.address() as AddressInfo).port}: every request answers 503 until the release has run`);
        },
      });
    } catch (err) {
      if (stopping.signal.aborted) return; // the drain takes it from here
      if (waiting) await closeServer(waiting.server);
      await embedded?.stop();
      fatal(logger, 'could not connect to the database', err);
    }
    const c = conn;
    try {
      // One checkpointer per process, shared by every LangGraph graph, before any run can start.
      if (loaded && agents.keepsCheckpoints()) {
        checkpointer = await retryWhileUnavailable(
          'checkpointer',
          () =>
            // On the process's pool: its connections are part of the process's budget.
            openCheckpointer({ pool: c.pool, schema: config.CHECKPOINT_SCHEMA }),
          { logger, signal: stopping.signal },
        );
        loaded.useCheckpointer(checkpointer);
      }
      if (stopping.signal.aborted) return;
      const deps: RoleDeps = {
        config,
        conn: c,
        logger,
        agents,
        databaseUrl: url,
        signal: stopping.signal,
        server: waiting?.server.listening ? waiting.server : undefined,
      };
      for (const start of spec.roles) roles.push(await start(deps));
    } catch (err) {
      if (stopping.signal.aborted && !roles.length) return; // a wait abandoned by SIGTERM: the drain closes what is open
      for (const r of roles) await r.stop(0).catch(() => {});
      if (waiting && !roles.length) await closeServer(waiting.server);
      roles.length = 0;
      await checkpointer?.end().catch(() => {});
      await c.close();
      await embedded?.stop();
      fatal(logger, 'startup failed', err);
    }
  })();
  await startup;
}
