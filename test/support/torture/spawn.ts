import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inheritedEnv, watchChild } from '../child.ts';
import type { SpawnedApp } from '../child.ts';

// Processes for the torture run outside node:test (a standalone run, bench/db-restarts.ts).
// test/support/processes.ts registers a node:test `after` hook when imported, which a plain
// script must not do; the test itself passes spawnApp, which has the same shape as Proc.

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export type Role = 'api' | 'scheduler' | 'worker';

/** What the torture run needs of a spawned process: the same as the tests' spawned apps. */
export type Proc = SpawnedApp;

export type Spawner = (name: Role, env: Record<string, string | undefined>) => Proc;

const live = new Set<ChildProcess>();
let hooked = false;

/** Spawns `node apps/<name>/main.ts` on this Node, as production runs it; killed if this process exits. */
export const spawnProcess: Spawner = (name, env) => {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const child = spawn(process.execPath, [path.join(ROOT, 'apps', name, 'main.ts')], {
    cwd: ROOT,
    env: { ...inheritedEnv(), NODE_ENV: 'test', LOG_LEVEL: 'info', MIGRATE_ON_START: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  return watchChild(child);
};

/** A TCP port free on 127.0.0.1 now (the api binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
