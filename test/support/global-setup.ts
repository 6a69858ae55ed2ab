// Runs once before all test files. Without DATABASE_URL, start the embedded PostgreSQL and point
// every test file (they inherit this environment) at it. Then the run's migrated template, which
// test databases are copies of (test/support/db.ts).
import path from 'node:path';
import { startEmbeddedPostgres } from '../../libs/db/index.ts';
import type { EmbeddedDatabase } from '../../libs/db/index.ts';
import { TEMPLATE_ENV, createTemplateDatabase, dropTemplateDatabase } from './db.ts';

let embedded: EmbeddedDatabase | undefined;
let template: string | undefined;

export async function globalSetup(): Promise<void> {
  // V8's compile cache (test/run.ts sets it for every process of `npm test`), here for a run of
  // node --test: inherited by the test files and the processes they spawn.
  process.env.NODE_COMPILE_CACHE ??= path.resolve(import.meta.dirname, '../../.agentcron/cache/node-compile');
  if (!process.env.DATABASE_URL) {
    embedded = await startEmbeddedPostgres({ dataDir: '.agentcron/test-pgdata', port: Number(process.env.EMBEDDED_PG_TEST_PORT ?? 54339), database: 'test' });
    process.env.DATABASE_URL = embedded.url;
    process.stdout.write(`# tests use embedded PostgreSQL at ${embedded.url}\n`);
  }
  template = await createTemplateDatabase();
  process.env[TEMPLATE_ENV] = template;
}

export async function globalTeardown(): Promise<void> {
  if (template) await dropTemplateDatabase(template).catch((err: Error) => process.stdout.write(`# could not drop the template database: ${err.message}\n`));
  await embedded?.stop();
}
