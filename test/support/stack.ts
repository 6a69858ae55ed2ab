import { createTestDatabase } from './db.ts';
import type { TestDatabase } from './db.ts';
import { freePort, spawnApp } from './processes.ts';
import type { SpawnedApp } from './processes.ts';

export interface Stack {
  db: TestDatabase;
  /** http://127.0.0.1:PORT of the api process. */
  url: string;
  api: SpawnedApp;
  scheduler?: SpawnedApp;
  worker?: SpawnedApp;
  /** SIGTERM every process, then drop the database. */
  stop(): Promise<void>;
}

/**
 * Real processes on a database of their own: the api always, the scheduler and a worker when
 * asked. `env` adds settings (AUTH_MODE, CRON_ALLOW_SECONDS_SCHEDULE ...) to all of them.
 */
export async function startStack(label: string, opts: { scheduler?: boolean; worker?: boolean; env?: Record<string, string> } = {}): Promise<Stack> {
  const db = await createTestDatabase(label);
  const port = await freePort();
  const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', HEARTBEAT_INTERVAL_SECONDS: '1', ...opts.env };
  const api = spawnApp('api', env);
  const scheduler = opts.scheduler ? spawnApp('scheduler', env) : undefined;
  const worker = opts.worker ? spawnApp('worker', env) : undefined;
  await api.waitFor(/api listening on/);
  await scheduler?.waitFor(/scheduler started/);
  await worker?.waitFor(/worker started/);
  const procs = [api, scheduler, worker].filter((p): p is SpawnedApp => p !== undefined);
  return {
    db,
    url: `http://127.0.0.1:${port}`,
    api,
    scheduler,
    worker,
    async stop() {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      await db.drop();
    },
  };
}
