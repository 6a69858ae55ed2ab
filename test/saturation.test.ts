import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { healthRoutes } from '../libs/http/health.ts';
import type { HealthDeps } from '../libs/http/health.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { startTestQueue } from './support/engine.ts';

// Saturation is visible (issue 18): deployment-wide queue latency, runs waiting by reason and lag
// to start, on /metrics and /health; /health's status code follows its body.

/** GET /health of a health router on this database, served in this process. */
async function health(deps: HealthDeps): Promise<{ status: number; body: any }> {
  const app = express();
  app.use(healthRoutes(deps));
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/health`);
    return { status: res.status, body: (await res.json()) as any };
  } finally {
    server.close();
  }
}

describe('/health in-process', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  before(async () => {
    db = await createTestDatabase('saturation');
    boss = await startTestQueue(db.url);
  });
  after(async () => {
    await boss?.stop({ graceful: false, close: true });
    await db?.drop();
  });

  test('a failing queue check answers 503 with ok false: the status code follows the body', async () => {
    const deps: HealthDeps = { pool: db.pool, boss, heartbeatSeconds: 1 };
    let h = await health(deps);
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal(h.body.ok, true);
    // What the queue check reads (pg-boss's queue table) is gone: the database answers, the queue does not.
    await db.pool.query(`ALTER TABLE pgboss.queue RENAME TO queue_away`);
    try {
      h = await health(deps);
      assert.equal(h.body.ok, false, JSON.stringify(h.body));
      assert.equal(h.body.database.ok, true);
      assert.equal(h.body.queue.ok, false);
      assert.equal(h.status, 503, JSON.stringify(h.body));
    } finally {
      await db.pool.query(`ALTER TABLE pgboss.queue_away RENAME TO queue`);
    }
    h = await health(deps);
    assert.equal(h.status, 200, JSON.stringify(h.body));
  });
});
