import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after } from 'node:test';
import { inheritedEnv, watchChild } from './child.ts';
import type { SpawnedApp } from './child.ts';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A graph config file with no graphs of its own: the processes run the built-in echo only. */
export const BUILTIN_ONLY = path.join(ROOT, 'test/fixtures/builtin-only.json');

export type AppName = 'api' | 'scheduler' | 'worker' | 'migrate' | 'all';

export type { SpawnedApp } from './child.ts';
export { inheritedEnv } from './child.ts';

/** Spawns an agentcron process as it runs in production (`node apps/<name>/main.ts`), on this Node. */
export function spawnApp(name: AppName, env: Record<string, string | undefined>): SpawnedApp {
  const child = spawn(process.execPath, [path.join(ROOT, 'apps', name, 'main.ts')], {
    cwd: ROOT,
    // A small pool: test files run side by side on one server (max_connections 100), each with
    // processes of its own. Only the built-in graphs unless a test names a config: loading the
    // LangGraph example costs every api and worker half a second of CPU, on two cores shared by all.
    env: {
      ...inheritedEnv(),
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      // The api answers 503 when its pool is exhausted (the torture counts every 5xx): 3 for it;
      // a scheduler or a worker only waits a moment for a connection: 2 (pg-boss shares the pool;
      // their LISTEN connection comes on top). '' gives the defaults (DATABASE_MAX_CONNECTIONS).
      DATABASE_POOL_MAX: name === 'api' || name === 'all' ? '3' : '2',
      AGENTCRON_CONFIG: BUILTIN_ONLY,
      // Each test's database is the test's own: its processes migrate it (and install pg-boss's
      // schema) as they start, as before the release-only default. Tests of the release set false.
      MIGRATE_ON_START: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child);
}

// Every child still running when a test file's tests are done is killed, so a failed assertion
// never leaves processes behind that keep the file (and the suite) from finishing.
const live = new Set<ChildProcess>();
after(() => {
  for (const child of live) child.kill('SIGKILL');
});

export function track(child: ChildProcess): SpawnedApp {
  live.add(child);
  child.on('exit', () => live.delete(child));
  return watchChild(child);
}

/**
 * The kernel's ephemeral port range, from which listen(0) and every outgoing connection (each
 * pool connection to PostgreSQL, of every test file running at the same time) take their ports.
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: assume the IANA range
  }
  return [49152, 65535];
}

function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => {
      const { port: got } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(got));
    });
  });
}

/**
 * An unused TCP port on 127.0.0.1 for a process spawned next, which binds it a second or two
 * later. Taken at random below the ephemeral range when there is room: a port listen(0) hands
 * out is one an outgoing connection may take meanwhile, and another test file running at the
 * same time may be given the same one.
 */
export async function freePort(): Promise<number> {
  const [lo] = ephemeralRange();
  const from = 10_000;
  if (lo - from >= 5_000) {
    for (let i = 0; i < 50; i++) {
      const port = await tryListen(from + Math.floor(Math.random() * (lo - from)));
      if (port !== null) return port;
    }
  }
  const port = await tryListen(0);
  if (port === null) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}
