import { builtinAgents } from '../agents/index.ts';
import { loadConfigOrExit, requireDatabaseUrl } from '../config/index.ts';
import { startEmbeddedPostgres } from '../db/index.ts';
import type { EmbeddedDatabase } from '../db/index.ts';
import { createLogger } from '../log/index.ts';
import { connect } from './bootstrap.ts';
import { fatal, onShutdown } from './lifecycle.ts';
import type { Role, RoleDeps } from './roles.ts';

export interface ProcessSpec {
  /** Name on every log line. */
  service: string;
  /** Started in this order; stopped in the same order (the ones taking new work stop first). */
  roles: ((deps: RoleDeps) => Promise<Role>)[];
  /** Run pg-boss maintenance here (workers). */
  supervise: boolean;
  /** Without DATABASE_URL, start the embedded PostgreSQL instead of refusing to start. */
  embeddedFallback?: boolean;
}

/** A process's whole life: config, logger, database, queue, roles, and a drain on SIGTERM/SIGINT. */
export async function runProcess(spec: ProcessSpec): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.LOG_LEVEL, json: config.NODE_ENV === 'production', service: spec.service });
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    if (!spec.embeddedFallback) databaseUrl = requireDatabaseUrl(config);
    else {
      logger.info(`DATABASE_URL not set: starting embedded PostgreSQL (data in ${config.EMBEDDED_PG_DIR})`);
      embedded = await startEmbeddedPostgres({ dataDir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT }).catch((err) =>
        fatal(logger, 'embedded PostgreSQL', err),
      );
      databaseUrl = embedded.url;
    }
  }
  const conn = await connect(config, databaseUrl, logger, { supervise: spec.supervise, applicationName: `agentcron-${spec.service}` }).catch(
    async (err) => {
      await embedded?.stop();
      return fatal(logger, 'could not connect to the database', err);
    },
  );
  const deps: RoleDeps = { config, conn, logger, agents: builtinAgents(), databaseUrl };
  const roles: Role[] = [];
  try {
    for (const start of spec.roles) roles.push(await start(deps));
  } catch (err) {
    for (const r of roles) await r.stop(0).catch(() => {});
    await conn.close();
    await embedded?.stop();
    fatal(logger, 'startup failed', err);
  }
  const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
  onShutdown(logger, config.SHUTDOWN_GRACE_SECONDS, async () => {
    for (const r of roles) await r.stop(graceMs);
    await conn.close(graceMs);
    await embedded?.stop();
  });
}
