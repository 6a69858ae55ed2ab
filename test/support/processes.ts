import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type AppName = 'api' | 'scheduler' | 'worker' | 'migrate' | 'all';

export interface SpawnedApp {
  child: ChildProcess;
  /** Every line written so far, stdout and stderr. */
  output: string[];
  /** Resolves with the first line (past or future) matching re; rejects after timeoutMs or on exit. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Spawns an agentcron process as it runs in production (`node apps/<name>/main.ts`), on this Node. */
export function spawnApp(name: AppName, env: Record<string, string | undefined>): SpawnedApp {
  const child = spawn(process.execPath, [path.join(ROOT, 'apps', name, 'main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
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
  const output: string[] = [];
  const waiters = new Set<() => void>();
  const onData = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) if (line.trim()) output.push(line);
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output,
    exited,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = output.find((l) => re.test(l));
          if (hit) {
            cleanup();
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re} in:\n${output.slice(-30).join('\n')}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        exited.then((code) => {
          if (waiters.has(check)) {
            cleanup();
            reject(new Error(`process exited (${code}) before ${re}:\n${output.slice(-30).join('\n')}`));
          }
        });
        check();
      });
    },
  };
}

/** An unused TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
