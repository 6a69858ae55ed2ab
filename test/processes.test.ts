import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually } from './support/engine.ts';
import { freePort, spawnApp } from './support/processes.ts';

describe('processes', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('processes');
  });
  after(() => db?.drop());

  test('api, scheduler and worker start, report in /health, and exit 0 on SIGTERM', async () => {
    const port = await freePort();
    const env = { DATABASE_URL: db.url, PORT: String(port), HEARTBEAT_INTERVAL_SECONDS: '1' };
    const api = spawnApp('api', env);
    const scheduler = spawnApp('scheduler', env);
    const worker = spawnApp('worker', env);
    await api.waitFor(/api listening on/);
    await scheduler.waitFor(/scheduler started/);
    await worker.waitFor(/worker started/);

    const ok = await fetch(`http://127.0.0.1:${port}/ok`);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ok: true });

    // The scheduler's first pass is recorded with its next heartbeat.
    const health: any = await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(res.status, 200);
      const body: any = await res.json();
      return body.schedulers.last_tick_at ? body : null;
    }, 'the scheduler tick to show in /health');
    assert.equal(health.ok, true);
    assert.equal(health.database.ok, true);
    assert.equal(health.queue.ok, true);
    assert.equal(health.schedulers.alive, 1);
    assert.equal(health.workers.alive, 1);
    assert.ok(health.schedulers.last_tick_at, 'scheduler tick recorded');

    // A request id is echoed and logged.
    const traced = await fetch(`http://127.0.0.1:${port}/ok`, { headers: { 'x-request-id': 'trace-me-123' } });
    assert.equal(traced.headers.get('x-request-id'), 'trace-me-123');
    await api.waitFor(/GET \/ok 200.*trace-me-123/);

    for (const p of [api, scheduler, worker]) p.kill('SIGTERM');
    assert.deepEqual(await Promise.all([api.exited, scheduler.exited, worker.exited]), [0, 0, 0]);
    for (const p of [api, scheduler, worker])
      assert.ok(
        p.output.some((l) => /stopped$/.test(l)),
        p.output.join('\n'),
      );

    // Stopped processes no longer count as alive.
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM agentcron_processes WHERE stopped_at IS NULL`);
    assert.equal(rows[0].n, 0);
  });

  test('a SIGTERM the moment a process says it has started is a drain too: exit 0, not death by the signal', async () => {
    // Signalled as soon as the line arrives: the handler must already be in place when it is written.
    const port = await freePort();
    const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1' };
    const apps = [
      { app: spawnApp('api', env), ready: /api listening on/ },
      { app: spawnApp('scheduler', env), ready: /scheduler started/ },
      { app: spawnApp('worker', env), ready: /worker started/ },
    ];
    for (const { app, ready } of apps) {
      let sent = false;
      const signal = () => {
        // (track's listener, added first, has already split this chunk into output lines)
        if (!sent && app.output.some((l) => ready.test(l))) {
          sent = true;
          app.kill('SIGTERM');
        }
      };
      app.child.stdout!.on('data', signal);
      app.child.stderr!.on('data', signal);
    }
    await Promise.all(apps.map(({ app, ready }) => app.waitFor(ready)));
    const codes = await Promise.all(apps.map(({ app }) => app.exited));
    assert.deepEqual(codes, [0, 0, 0], apps.map(({ app }) => app.output.join('\n')).join('\n---\n'));
    for (const { app } of apps)
      assert.ok(
        app.output.some((l) => /stopped$/.test(l)),
        app.output.join('\n'),
      );
  });

  test('a worker drains a run in progress on SIGTERM before exiting 0', async () => {
    const env = { DATABASE_URL: db.url };
    const worker = spawnApp('worker', env);
    await worker.waitFor(/worker started/);
    const { rows } = await db.pool.query(`SELECT assistant_id FROM assistants WHERE graph_id = 'echo'`);
    const assistantId = rows[0].assistant_id;
    // A manual run that sleeps 3 s, enqueued as the API does.
    const { PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ connectionString: db.url, supervise: false, schedule: false });
    await boss.start();
    const { insertRuns } = await import('../libs/runs/index.ts');
    const { withTransaction } = await import('../libs/db/index.ts');
    const { randomUUID } = await import('node:crypto');
    const runId = randomUUID();
    const threadId = randomUUID();
    try {
      await withTransaction(db.pool, (client) =>
        insertRuns(client, boss, [
          {
            run_id: runId,
            thread_id: threadId,
            assistant_id: assistantId,
            user_id: 'u',
            cron_id: null,
            scheduled_for: null,
            kwargs: { input: { sleep_ms: 3000, n: 1 } },
            multitask_strategy: 'enqueue',
            metadata: {},
            new_thread: { metadata: {}, ephemeral: false },
            serialize_key: threadId,
          },
        ]),
      );
    } finally {
      await boss.stop({ graceful: false });
    }
    await eventually(
      async () => (await db.pool.query(`SELECT status FROM runs WHERE run_id = $1`, [runId])).rows[0].status === 'running',
      'the run to start',
      20_000,
      20,
    );
    worker.kill('SIGTERM');
    assert.equal(await worker.exited, 0, worker.output.join('\n'));
    const r = await db.pool.query(`SELECT status, output FROM runs WHERE run_id = $1`, [runId]);
    assert.equal(r.rows[0].status, 'success');
    assert.deepEqual(r.rows[0].output, { sleep_ms: 3000, n: 1 });
  });

  test('/health answers 503 when the database is unreachable', async () => {
    const scratch = await createTestDatabase('health503');
    const port = await freePort();
    const api = spawnApp('api', { DATABASE_URL: scratch.url, PORT: String(port) });
    await api.waitFor(/api listening on/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    await scratch.drop(); // terminates the api's connections and removes the database
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(res.status, 503);
    const body: any = await res.json();
    assert.equal(body.ok, false);
    assert.equal(body.database.ok, false);
    assert.ok(body.database.error);
    // liveness is not readiness: /ok still answers
    assert.equal((await fetch(`http://127.0.0.1:${port}/ok`)).status, 200);
    api.kill('SIGTERM');
    assert.equal(await api.exited, 0, api.output.join('\n'));
  });
});
