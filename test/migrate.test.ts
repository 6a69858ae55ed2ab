import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { spawnApp } from './support/processes.ts';
import { readdirSync } from 'node:fs';
import { MIGRATIONS_DIR } from '../libs/db/index.ts';
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
