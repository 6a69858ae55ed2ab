// Runs once before all test files. Without DATABASE_URL, start the embedded PostgreSQL and point
// every test file (they inherit this environment) at it.
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../libs/db/index.ts';
import type { EmbeddedDatabase } from '../../libs/db/index.ts';

let embedded: EmbeddedDatabase | undefined;

export async function globalSetup(): Promise<void> {
  // The suite starts a few hundred Node processes (test files and the processes they spawn): V8's
  // on-disk compile cache, inherited through the environment, saves each about 0.3 s of CPU.
  process.env.NODE_COMPILE_CACHE ??= path.join(os.tmpdir(), 'agentcron-test-compile-cache');
  if (process.env.DATABASE_URL) return;
  embedded = await startEmbeddedPostgres({ dataDir: '.agentcron/test-pgdata', port: Number(process.env.EMBEDDED_PG_TEST_PORT ?? 54339), database: 'test' });
  process.env.DATABASE_URL = embedded.url;
  process.stdout.write(`# tests use embedded PostgreSQL at ${embedded.url}\n`);
}

export async function globalTeardown(): Promise<void> {
  await embedded?.stop();
}
