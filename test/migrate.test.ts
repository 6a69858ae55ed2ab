import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { spawnApp } from './support/processes.ts';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { MIGRATIONS_DIR, createPool, migrate } from '../libs/db/index.ts';
import { QUEUES } from '../libs/queue/index.ts';

describe('migrations', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('migrate', { migrate: false });
  });
  after(() => db?.drop());

  test('two release processes at the same moment both succeed and apply each migration once', async () => {
    const a = spawnApp('migrate', { DATABASE_URL: db.url });
    const b = spawnApp('migrate', { DATABASE_URL: db.url });
    const [ca, cb] = await Promise.all([a.exited, b.exited]);
    assert.equal(ca, 0, a.output.join('\n'));
    assert.equal(cb, 0, b.output.join('\n'));
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql'));
    const { rows } = await db.pool.query('SELECT id, name FROM agentcron_migrations ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.name),
      files.sort(),
    );
    // exactly one of them applied the files; the other found the database up to date
    const applied = [...a.output, ...b.output].filter((l) => /applied 001_/.test(l));
    assert.equal(applied.length, 1);
    // pg-boss's schema is installed with agentcron's queues
    const q = await db.pool.query(`SELECT name FROM pgboss.queue ORDER BY name`);
    assert.deepEqual(
      q.rows.map((r) => r.name),
      Object.values(QUEUES).sort(),
    );
  });

  test('rolling forward again is a no-op', async () => {
    const before = await db.pool.query('SELECT id, applied_at FROM agentcron_migrations ORDER BY id');
    const p = spawnApp('migrate', { DATABASE_URL: db.url });
    assert.equal(await p.exited, 0);
    assert.ok(
      p.output.some((l) => /database is up to date/.test(l)),
      p.output.join('\n'),
    );
    const again = await db.pool.query('SELECT id, applied_at FROM agentcron_migrations ORDER BY id');
    assert.deepEqual(again.rows, before.rows);
  });
});

/** A directory of migration files written for one test. */
function migrationDir(files: Record<string, string>): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-migrations-'));
  for (const [name, sql] of Object.entries(files)) writeFileSync(path.join(dir, name), sql);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('online migration runner', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('migrate_online', { migrate: false });
    await db.pool.query('CREATE TABLE busy (id int PRIMARY KEY, v int)');
    await db.pool.query('INSERT INTO busy SELECT g, NULL FROM generate_series(1, 250) g');
  });
  after(() => db?.drop());

  test('a migration blocked by a held lock waits with short lock waits, other sessions go on, and it applies once the lock is released', async () => {
    const files = migrationDir({ '001_add.sql': 'ALTER TABLE busy ADD COLUMN added int;' });
    const holder = new pg.Client({ connectionString: db.url });
    const reader = new pg.Client({ connectionString: db.url });
    await Promise.all([holder.connect(), reader.connect()]);
    try {
      // A long transaction holding the table (ALTER TABLE needs it exclusively).
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM busy');
      const retries: string[] = [];
      const logger = { info: () => {}, warn: (m: string) => void retries.push(m) };
      const migrating = migrate(db.url, files.dir, { lockTimeoutMs: 200, backoff: { initialMs: 100, maxMs: 300 }, logger });
      // Meanwhile other sessions read the table: each waits at most one lock_timeout (never for the holder).
      const latencies: number[] = [];
      while (retries.length < 3) {
        const t = Date.now();
        await reader.query('SELECT count(*) FROM busy');
        latencies.push(Date.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(Math.max(...latencies) < 1500, `a reader waited ${Math.max(...latencies)} ms`);
      assert.match(retries[0], /migration waits for a lock \(a table is busy\): 001_add\.sql/);
      const pending = await db.pool.query(`SELECT count(*)::int AS n FROM agentcron_migrations WHERE name = '001_add.sql'`);
      assert.equal(pending.rows[0].n, 0);
      await holder.query('COMMIT');
      assert.deepEqual((await migrating).applied, ['001_add.sql']);
      const col = await db.pool.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'added'`);
      assert.equal(col.rowCount, 1);
    } finally {
      await holder.end().catch(() => {});
      await reader.end().catch(() => {});
      files.remove();
    }
  });

  test('a no-transaction migration builds an index CONCURRENTLY and backfills in batches; two migrators at once apply it once', async () => {
    const files = migrationDir({
      '001_add.sql': 'ALTER TABLE busy ADD COLUMN added int;',
      '002_concurrent.sql': [
        '-- agentcron:no-transaction',
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS busy_v ON busy (v);',
        '-- agentcron:batch',
        'UPDATE busy SET v = id WHERE id IN (SELECT id FROM busy WHERE v IS NULL ORDER BY id LIMIT 100);',
      ].join('\n'),
    });
    // A pool of one connection: the runner uses connections of its own, so nothing waits on the pool,
    // and no session setting is left on its connection.
    const pool = createPool(db.url, { max: 1 });
    try {
      const before = (await pool.query(`SHOW statement_timeout`)).rows[0].statement_timeout;
      const logs: string[] = [];
      const logger = { info: (m: string, meta?: Record<string, unknown>) => void logs.push(`${m} ${JSON.stringify(meta ?? {})}`), warn: () => {} };
      // Either may win the lock: both log to the same lines.
      const [a, b] = await Promise.all([migrate(pool, files.dir, { logger }), migrate(db.url, files.dir, { logger })]);
      assert.deepEqual([...a.applied, ...b.applied], ['002_concurrent.sql']);
      const index = await db.pool.query(`SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = 'busy_v'::regclass`);
      assert.equal(index.rows[0].indisvalid, true);
      const left = await db.pool.query('SELECT count(*)::int AS n FROM busy WHERE v IS NULL');
      assert.equal(left.rows[0].n, 0);
      assert.ok(
        logs.some((l) => /backfill batch done \{"rows":250\}/.test(l)),
        logs.join('\n'),
      );
      assert.equal((await pool.query(`SHOW statement_timeout`)).rows[0].statement_timeout, before);
      assert.deepEqual((await migrate(db.url, files.dir)).applied, []);
    } finally {
      await pool.end();
      files.remove();
    }
  });
});
