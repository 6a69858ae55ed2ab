import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPool, prepared } from '../libs/db/index.ts';
import type { Pool } from '../libs/db/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';

// Hot-path statements are named prepared statements on a direct connection (kept by the server
// session, planned once) and unnamed through a transaction pooler (libs/db/prepared.ts).

const SQL = `SELECT count(*)::int AS n FROM unnest($1::int[]) AS v(x) WHERE v.x > 0`;

async function namedOnSession(pool: Pool, run: number): Promise<string[]> {
  const client = await pool.connect();
  try {
    for (let i = 0; i < run; i++) {
      const { rows } = await client.query<{ n: number }>(prepared(client, SQL, [[1, 2, -3]]));
      assert.equal(rows[0].n, 2);
    }
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE statement = $1`, [SQL]);
    return rows.map((r) => r.name);
  } finally {
    client.release();
  }
}

describe('prepared statements', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('prepared', { migrate: false });
  });
  after(async () => {
    await db?.drop();
  });

  test('on a direct connection a hot statement is prepared once per session and reused', async () => {
    const pool = createPool(db.url, { max: 1 });
    try {
      const names = await namedOnSession(pool, 3);
      assert.equal(names.length, 1);
      assert.match(names[0], /^agentcron_[0-9a-f]{20}$/);
      // The pool's own query (a client of its choosing) runs it the same way.
      const { rows } = await pool.query<{ n: number }>(prepared(pool, SQL, [[5]]));
      assert.equal(rows[0].n, 1);
    } finally {
      await pool.end();
    }
  });

  test('through a transaction pooler (pooled) nothing is kept on the server session', async () => {
    const pool = createPool(db.url, { max: 1, pooled: true });
    try {
      assert.deepEqual(await namedOnSession(pool, 3), []);
      assert.equal(prepared(pool, SQL, []).name, undefined);
    } finally {
      await pool.end();
    }
  });
});
