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
 * A database of its own for one test file (dropped afterwards), optionally migrated. Each file
 * is isolated from the others, which may run at the same time.
 */
export async function createTestDatabase(label: string, opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `agentcron_t_${label.replace(/\W+/g, '_').toLowerCase().slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl());
  u.pathname = `/${name}`;
  const url = u.toString();
  // Small: test files run side by side on one server (max_connections 100).
  const pool = createPool(url, { max: 4, applicationName: 'agentcron-test' });
  if (opts.migrate ?? true) await migrate(pool);
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
