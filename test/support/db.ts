import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, migrate } from '../../libs/db/index.ts';
import type { Pool } from '../../libs/db/index.ts';

/** The server tests run against: DATABASE_URL (CI: 127.0.0.1:5432) or the embedded one set up by global-setup. */
export function serverUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run tests through `npm test`, whose global setup provides one');
  return url;
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/**
 * The migrated template of this run (test/support/global-setup.ts makes it once, from the same
 * migrations/ files): `AGENTCRON_TEST_TEMPLATE=<name>@<UTC day it was migrated>`. Each migrated
 * test database is a copy of it instead of running every migration again (~0.2 s of the server's
 * CPU and half a second each, for some 70 databases a run). Unset (a file run by `node --test`
 * alone, the torture run standalone), or made on another UTC day (migration 019 creates the
 * ledger's daily partitions from the day it runs), each database is migrated as it always was.
 */
export const TEMPLATE_ENV = 'AGENTCRON_TEST_TEMPLATE';

const utcDay = () => new Date().toISOString().slice(0, 10);

function template(): string | null {
  const [name, day] = (process.env[TEMPLATE_ENV] ?? '').split('@');
  return name && /^agentcron_tpl_\w+$/.test(name) && day === utcDay() ? name : null;
}

async function adminQuery(...statements: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    for (const sql of statements) await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/**
 * Makes the run's migrated template (global setup): a database migrated like any test database,
 * then closed to connections, so that CREATE DATABASE ... TEMPLATE may copy it at any time (it
 * refuses a template anyone is connected to). Templates of runs that ended without their
 * teardown, a day old, are dropped. Answers the value of AGENTCRON_TEST_TEMPLATE.
 */
export async function createTemplateDatabase(): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname ~ '^agentcron_tpl_[0-9]+_'`);
    const dayAgo = Math.floor(Date.now() / 1000) - 86_400;
    for (const { datname } of rows) if (Number(datname.split('_')[2]) < dayAgo) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  const day = utcDay();
  const name = `agentcron_tpl_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const u = new URL(serverUrl());
  u.pathname = `/${name}`;
  const pool = createPool(u.toString(), { max: 2, applicationName: 'agentcron-test' });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
  return `${name}@${day}`;
}

/** Drops the run's template (global teardown). */
export async function dropTemplateDatabase(value: string): Promise<void> {
  const [name] = value.split('@');
  if (/^agentcron_tpl_\w+$/.test(name)) await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/**
 * A database of its own for one test file (dropped afterwards), optionally migrated. Each file
 * is isolated from the others, which may run at the same time.
 */
export async function createTestDatabase(label: string, opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `agentcron_t_${label.replace(/\W+/g, '_').toLowerCase().slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const migrated = opts.migrate ?? true;
  const from = migrated ? template() : null;
  // Commits that do not wait for their WAL to reach the disk: a tenth less CPU for the suite
  // (PostgreSQL's and the kernel's flushes; 31.0 against 27.9 CPU-s for six files) and nothing a
  // test can see, since every test that crashes PostgreSQL runs an embedded one of its own.
  await adminQuery(from ? `CREATE DATABASE ${name} TEMPLATE ${from}` : `CREATE DATABASE ${name}`, `ALTER DATABASE ${name} SET synchronous_commit = off`);
  const u = new URL(serverUrl());
  u.pathname = `/${name}`;
  const url = u.toString();
  // Small: test files run side by side on one server (max_connections 100).
  const pool = createPool(url, { max: 4, applicationName: 'agentcron-test' });
  // A copy of the template: what migration 009 stamps with the time it ran (the deployment
  // counters count from there), stamped now, as migrating this database now would have.
  if (from) await pool.query(`UPDATE metrics_fold SET horizon = now()`);
  else if (migrated) await migrate(pool);
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end().catch(() => {});
      const a = new pg.Client({ connectionString: serverUrl() });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
