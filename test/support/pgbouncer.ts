import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, track } from './processes.ts';
import type { SpawnedApp } from './processes.ts';

// Debian's PgBouncer (apt-get install pgbouncer; .ci/run installs it) in transaction pooling mode,
// as Heroku, Supabase, Neon and Railway offer it, started by a test on a free port in front of a
// PostgreSQL server.

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

/** The pgbouncer binary, or an error saying how to get it (never a silent skip). */
export function pgbouncerBinary(): string {
  const found = [process.env.PGBOUNCER_BIN, ...CANDIDATES].find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error(`pgbouncer not found (looked at ${CANDIDATES.join(', ')}; PGBOUNCER_BIN overrides): apt-get install pgbouncer (.ci/run does)`);
  return found;
}

export interface Bouncer {
  /** `serverUrl` with PgBouncer's host and port: the same database and user, pooled. */
  url: string;
  process: SpawnedApp;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in transaction mode in front of `serverUrl`'s server (trust authentication, as
 * the test server has) and resolves once it accepts connections.
 */
export async function startPgBouncer(serverUrl: string, opts: { poolSize?: number; ignoreStartupParameters?: string } = {}): Promise<Bouncer> {
  const bin = pgbouncerBinary();
  const server = new URL(serverUrl);
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'agentcron-pgbouncer-'));
  // Run as root, PgBouncer refuses to start: it then runs as the postgres user, which reads the dir.
  await chmod(dir, 0o755);
  const user = decodeURIComponent(server.username || 'postgres');
  // Clients are trusted; the password (if the server wants one) is what PgBouncer logs in with.
  await writeFile(path.join(dir, 'users.txt'), `"${user}" "${decodeURIComponent(server.password)}"\n`);
  await writeFile(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize ?? 20}`,
      'max_client_conn = 500',
      'server_reset_query =',
      ...(opts.ignoreStartupParameters ? [`ignore_startup_parameters = ${opts.ignoreStartupParameters}`] : []),
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  const child = spawn(bin, [...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = track(child);
  await proc.waitFor(/listening on 127\.0\.0\.1:\d+/, 15_000);
  const url = new URL(serverUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    process: proc,
    async stop() {
      proc.kill('SIGINT');
      await proc.exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
